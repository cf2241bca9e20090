#include "storage/data_lock.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_util.h"

namespace lottery {
namespace {

using std::chrono::milliseconds;

// A child that takes the lock, says so on a pipe, and holds it until killed.
pid_t HoldInChild(const std::string& bets, bool publish) {
  int ready[2];
  REQUIRE(::pipe(ready) == 0);
  pid_t child = ::fork();
  if (child == 0) {
    ::close(ready[0]);
    auto lock = DataLock::Acquire(bets, milliseconds(0));
    if (!lock) ::_exit(1);
    if (publish && !lock->Publish(::getpid())) ::_exit(2);
    char c = 'x';
    (void)::write(ready[1], &c, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  char c = 0;
  REQUIRE(::read(ready[0], &c, 1) == 1);
  ::close(ready[0]);
  return child;
}

void Reap(pid_t pid) {
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
}

TEST_CASE("one owner at a time; a second is refused naming the owner's pid") {
  testing::TempDir dir;
  const std::string bets = dir.File("bets.csv");
  pid_t owner = HoldInChild(bets, true);
  auto second = DataLock::Acquire(bets, milliseconds(0));
  REQUIRE_FALSE(second);
  CHECK(second.error().kind == ErrorKind::kBusy);
  CHECK(second.error().message.find("pid " + std::to_string(owner)) != std::string::npos);
  CHECK(second.error().message.find(bets) != std::string::npos);
  // The bets file itself was never created by either.
  CHECK_FALSE(std::filesystem::exists(bets));
  Reap(owner);
  // The kernel released it with its holder: the next owner takes it over.
  auto next = DataLock::Acquire(bets, milliseconds(0));
  REQUIRE(next);
  REQUIRE(next->Publish(::getpid()));
  CHECK(ReadLockOwner(DataLock::PathFor(bets)) == ::getpid());
  struct stat st {};
  REQUIRE(::stat(DataLock::PathFor(bets).c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
  next->Release(DataLock::LockFile::kRemove);
  CHECK_FALSE(std::filesystem::exists(DataLock::PathFor(bets)));
}

TEST_CASE("a failed start removes the lock file it created, and only that") {
  testing::TempDir dir;
  const std::string bets = dir.File("bets.csv");
  {
    auto lock = DataLock::Acquire(bets, milliseconds(0));
    REQUIRE(lock);
    CHECK(lock->created());
  }  // never published: as a start that failed before recovery
  CHECK_FALSE(std::filesystem::exists(DataLock::PathFor(bets)));
  // A stale file left by a crash is taken over, and left as it was.
  { std::ofstream(DataLock::PathFor(bets)) << "999999\n"; }
  {
    auto lock = DataLock::Acquire(bets, milliseconds(0));
    REQUIRE(lock);
    CHECK_FALSE(lock->created());
  }
  CHECK(testing::ReadFile(DataLock::PathFor(bets)) == "999999\n");
}

TEST_CASE("workers of a dead owner are waited for, within a bound") {
  testing::TempDir dir;
  const std::string bets = dir.File("bets.csv");
  // The holder (a "worker") is alive; the pid in the file (its "parent") is not.
  pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ::waitpid(dead, nullptr, 0);
  pid_t worker = HoldInChild(bets, false);
  { std::ofstream(DataLock::PathFor(bets), std::ios::trunc) << dead << "\n"; }
  int waited = 0;
  auto t0 = std::chrono::steady_clock::now();
  auto refused = DataLock::Acquire(bets, milliseconds(200), [&](pid_t owner) {
    CHECK(owner == dead);
    ++waited;
  });
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::kBusy);
  CHECK(waited == 1);
  CHECK(std::chrono::steady_clock::now() - t0 >= milliseconds(200));
  // When the worker exits while it waits, the lock is taken.
  pid_t killer = ::fork();
  if (killer == 0) {
    ::usleep(100000);
    ::kill(worker, SIGKILL);
    ::_exit(0);
  }
  auto taken = DataLock::Acquire(bets, milliseconds(5000));
  CHECK(taken);
  ::waitpid(killer, nullptr, 0);
  ::waitpid(worker, nullptr, 0);
}

}  // namespace
}  // namespace lottery
