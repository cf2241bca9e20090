#include "shm/shared_state.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "common/test_util.h"

namespace lottery {
namespace {

int WaitExit(pid_t pid) {
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

TEST_CASE("the segment is shared with forked children") {
  auto shared = SharedSegment::Create(5);
  REQUIRE(shared);
  CHECK(shared->agencies() == 5);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    SharedLock lock(shared->state());
    shared->state().slots[3].last_seq = 42;
    ::_exit(0);
  }
  CHECK(WaitExit(pid) == 0);
  SharedLock lock(shared->state());
  CHECK(shared->state().slots[3].last_seq == 42);
}

TEST_CASE("stored progress moves the slots, total_bets and the round_bets metric together") {
  auto shared = SharedSegment::Create(3);
  REQUIRE(shared);
  SharedState& s = shared->state();
  {
    SharedLock lock(s);
    AdvanceStoredProgress(s, lock, 1, 4, 400, 11);
    AdvanceStoredProgress(s, lock, 2, 1, 50, 7);
    AdvanceStoredProgress(s, lock, 1, 6, 120, ~0ull);  // digests wrap mod 2^64
  }
  SetStoredProgress(s, 3, StoredProgress{9, 900, 5});
  SetStoredProgress(s, 2, StoredProgress{3, 170, 20});
  SetStoredProgress(s, 2, StoredProgress{2, 100, 1});  // never back
  SharedLock lock(s);
  CHECK(s.slots[1].last_seq == 6);
  CHECK(s.slots[1].bets_stored == 520);
  CHECK(s.slots[1].stored_digest == 10);
  CHECK(s.slots[2].last_seq == 3);
  CHECK(s.slots[2].bets_stored == 170);
  CHECK(s.slots[2].stored_digest == 20);
  std::uint64_t sum = 0;
  for (std::uint32_t a = 1; a <= 3; ++a) {
    CAPTURE(a);
    CHECK(s.metrics.agencies[a].round_bets.load() == s.slots[a].bets_stored);
    sum += s.slots[a].bets_stored;
  }
  CHECK(s.total_bets == sum);
  CHECK(sum == 520 + 170 + 900);
}

TEST_CASE("a lock left by a dead process is recovered, not deadlocked") {
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    pthread_mutex_lock(&shared->state().mutex);
    ::_exit(0);  // dies holding the mutex
  }
  CHECK(WaitExit(pid) == 0);
  {
    SharedLock lock(shared->state());
    CHECK(lock.recovered());
  }
  SharedLock again(shared->state());
  CHECK_FALSE(again.recovered());
}

TEST_CASE("a waiter killed while waiting does not block the next broadcast") {
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    SharedLock lock(shared->state());
    lock.Wait(std::chrono::milliseconds(60000));
    ::_exit(0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(pid, SIGKILL);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  // A second waiter is woken by a broadcast from a third process.
  pid_t waiter = ::fork();
  REQUIRE(waiter >= 0);
  if (waiter == 0) {
    SharedLock lock(shared->state());
    bool woken = lock.Wait(std::chrono::milliseconds(10000));
    ::_exit(woken ? 0 : 1);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto start = std::chrono::steady_clock::now();
  {
    SharedLock lock(shared->state());
    lock.Broadcast();
  }
  CHECK(WaitExit(waiter) == 0);
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(5));
}

TEST_CASE("a timed wait returns after its timeout") {
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  SharedLock lock(shared->state());
  CHECK_FALSE(lock.Wait(std::chrono::milliseconds(20)));
}

TEST_CASE("an agency slot is claimed once, freed by its worker or when the worker is reaped") {
  auto shared = SharedSegment::Create(3);
  REQUIRE(shared);
  SharedState& s = shared->state();
  const pid_t me = ::getpid();
  {
    SharedLock lock(s);
    s.slots[2].last_seq = 7;
  }
  SlotClaim first = ClaimAgencySlot(s, 2, me);
  CHECK(first.holder == 0);
  CHECK(first.last_seq == 7);
  CHECK_FALSE(first.finished);
  // A second claim while this (live) process holds it is refused.
  SlotClaim second = ClaimAgencySlot(s, 2, me + 100000);
  CHECK(second.holder == me);
  // Released only by its holder.
  ReleaseAgencySlot(s, 2, me + 100000);
  CHECK(s.slots[2].owner_pid == me);
  ReleaseAgencySlot(s, 2, me);
  CHECK(s.slots[2].owner_pid == 0);
  // A holder that died but is not reaped yet does not lock the agency out.
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  REQUIRE(WaitExit(dead) == 0);
  REQUIRE(ClaimAgencySlot(s, 3, dead).holder == 0);
  CHECK(ClaimAgencySlot(s, 3, me).holder == 0);
  CHECK(s.slots[3].owner_pid == me);
  // Reaping a worker frees its slot and says which; the draw is untouched.
  WorkerRelease release = ReleaseWorker(s, me);
  CHECK(release.agency == 3);
  CHECK_FALSE(release.draw_reset);
  CHECK(s.slots[3].owner_pid == 0);
  CHECK(ReleaseWorker(s, me).agency == 0);
}

TEST_CASE("reaping a worker that led a group sync clears the lead and wakes its waiters") {
  auto seg = SharedSegment::Create(2);
  REQUIRE(seg);
  SyncState& sync = seg->state().sync;
  const pid_t dead = 4242;  // stands for the reaped worker's pid
  sync.leader = dead;
  const std::uint32_t before = sync.completed.load();
  CHECK_FALSE(ReleaseWorker(seg->state(), dead + 1).sync_leader);
  CHECK(sync.leader == dead);
  WorkerRelease release = ReleaseWorker(seg->state(), dead);
  CHECK(release.sync_leader);
  CHECK(sync.leader == 0);
  CHECK(sync.completed.load() == before + 1);
}

TEST_CASE("the group commit's totals are read whole, and a new bets file keeps them") {
  auto seg = SharedSegment::Create(1);
  REQUIRE(seg);
  SyncState& sync = seg->state().sync;
  SyncTotals none = ReadSyncTotals(sync);
  CHECK(none.syncs == 0);
  CHECK(none.covered == 0);
  CHECK(none.durable_end == 0);
  // As storage/group_commit.cc leaves them after two syncs and three
  // requests they covered.
  sync.syncs = 2;
  sync.covered = 3;
  sync.durable_end.store(4096);
  SyncTotals totals = ReadSyncTotals(sync);
  CHECK(totals.syncs == 2);
  CHECK(totals.covered == 3);
  CHECK(totals.durable_end == 4096);
  // A new round's empty file: its bytes start over, the counters do not.
  ResetSyncForNewFile(sync);
  totals = ReadSyncTotals(sync);
  CHECK(totals.syncs == 2);
  CHECK(totals.covered == 3);
  CHECK(totals.durable_end == 0);
}

TEST_CASE("published settings and shutdown reach workers, and wake waiters") {
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  SharedState& s = shared->state();
  const std::uint32_t generation = s.settings_generation.load();
  RuntimeSettings settings;
  settings.log_level = LogLevel::kDebug;
  settings.read_timeout_ms = 1234;
  PublishSettings(s, settings);
  CHECK(s.settings_generation.load() == generation + 1);
  CHECK(s.settings.read_timeout_ms == 1234);
  CHECK(s.settings.log_level == LogLevel::kDebug);
  const std::uint32_t changed = s.changed.load();
  BeginShutdown(s);
  CHECK(s.shutting_down);
  CHECK(s.changed.load() != changed);
}

}  // namespace
}  // namespace lottery
