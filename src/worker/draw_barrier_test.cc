#include "worker/draw_barrier.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "common/test_util.h"
#include "shm/shared_state.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"
#include "worker/winners_file.h"

namespace lottery {
namespace {

int WaitExit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

// Writes a bets file with known winners: agency a has a-1 winning bets.
std::string WriteBets(const testing::TempDir& dir, std::uint32_t agencies) {
  std::string rows;
  int doc = 20000000;
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    for (std::uint32_t w = 0; w + 1 < a; ++w) {
      AppendBetRow(rows, BetView{a, "Gané", "Sí", std::to_string(doc++), "1970-01-01", 7574});
    }
    for (int i = 0; i < 20; ++i) {
      AppendBetRow(rows, BetView{a, "Perdí", "No", std::to_string(doc++), "1970-01-01",
                                 static_cast<std::uint32_t>(i)});
    }
  }
  std::string path = dir.File("bets.csv");
  std::ofstream(path, std::ios::binary) << rows;
  return path;
}

TEST_CASE("the draw runs once, when the last agency finishes, and each gets its own winners") {
  testing::TempDir dir;
  constexpr std::uint32_t kAgencies = 4;
  std::string path = WriteBets(dir, kAgencies);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  auto winners_fd = CreateWinnersFile();
  REQUIRE(winners_fd);
  std::vector<pid_t> children;
  for (std::uint32_t a = 1; a <= kAgencies; ++a) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto store = BetStore::Open(path);
      if (!store) ::_exit(10);
      DrawBarrier barrier(*shared, *store, winners_fd->get(), 7574);
      if (!barrier.MarkFinished(a)) ::_exit(11);
      if (!barrier.DrawIfDue()) ::_exit(12);
      if (barrier.WaitForDraw([] { return false; }) != DrawBarrier::WaitResult::kDrawn) ::_exit(13);
      auto winners = barrier.Winners(a);
      if (!winners || winners->size() != a - 1) ::_exit(14);
      ::_exit(0);
    }
    children.push_back(pid);
    // Stagger them so that early ones really wait.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  for (pid_t pid : children) CHECK(WaitExit(pid) == 0);
  SharedState& s = shared->state();
  CHECK(s.draw_state == DrawState::kDone);
  CHECK(s.finished_count == kAgencies);
  auto store = BetStore::Open(path);
  REQUIRE(store);
  DrawBarrier barrier(*shared, *store, winners_fd->get(), 7574);
  auto third = barrier.Winners(3);
  REQUIRE(third);
  REQUIRE(third->size() == 2);
  // Agency 3's winners are documents 20000001+0..1 after agency 1 (0 winners,
  // 20 losers) and agency 2 (1 winner, 20 losers): 20000041 and 20000042.
  CHECK((*third)[0] == "20000041");
  CHECK((*third)[1] == "20000042");
}

TEST_CASE("nobody gets winners before every agency finished; shutdown cancels the wait") {
  testing::TempDir dir;
  std::string path = WriteBets(dir, 2);
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  auto winners_fd = CreateWinnersFile();
  REQUIRE(winners_fd);
  auto store = BetStore::Open(path);
  REQUIRE(store);
  DrawBarrier barrier(*shared, *store, winners_fd->get(), 7574);
  REQUIRE(barrier.MarkFinished(1));
  CHECK_FALSE(barrier.DrawIfDue().value());
  CHECK_FALSE(barrier.Winners(1));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto result = barrier.WaitForDraw([] { return false; });
    ::_exit(result == DrawBarrier::WaitResult::kCancelled ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  {
    SharedLock lock(shared->state());
    shared->state().shutting_down = true;
    lock.Broadcast();
  }
  auto start = std::chrono::steady_clock::now();
  CHECK(WaitExit(pid) == 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
  CHECK(shared->state().draw_state == DrawState::kNotYet);
}

TEST_CASE("a waiter takes the draw over when the drawer is gone") {
  testing::TempDir dir;
  std::string path = WriteBets(dir, 2);
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  auto winners_fd = CreateWinnersFile();
  REQUIRE(winners_fd);
  auto store = BetStore::Open(path);
  REQUIRE(store);
  DrawBarrier barrier(*shared, *store, winners_fd->get(), 7574);
  REQUIRE(barrier.MarkFinished(1));
  REQUIRE(barrier.MarkFinished(2));
  // A drawer that died mid-draw, as the parent finds it when reaping.
  const pid_t drawer = ::fork();
  if (drawer == 0) ::_exit(0);
  {
    SharedLock lock(shared->state());
    shared->state().draw_state = DrawState::kRunning;
    shared->state().drawer_pid = drawer;
  }
  REQUIRE(WaitExit(drawer) == 0);
  const WorkerRelease release = ReleaseWorker(shared->state(), drawer);
  CHECK(release.draw_reset);
  CHECK(shared->state().draw_state == DrawState::kNotYet);
  CHECK(barrier.WaitForDraw([] { return false; }) == DrawBarrier::WaitResult::kDrawn);
  auto w = barrier.Winners(2);
  REQUIRE(w);
  CHECK(w->size() == 1);
}

}  // namespace
}  // namespace lottery
