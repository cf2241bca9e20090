#include "shm/shared_state.h"

#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cassert>

#include <signal.h>

#include <cerrno>
#include <climits>
#include <ctime>
#include <new>
#include <utility>

#include "common/log.h"

namespace lottery {

Result<SharedSegment> SharedSegment::Create(std::uint32_t agencies) {
  if (agencies == 0 || agencies > kMaxAgencies)
    return Fail(ErrorKind::kConfig, "agencies out of range");
  void* mem = ::mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return FailErrno("mmap shared segment");
  auto* state = new (mem) SharedState();
  state->agencies = agencies;

  pthread_mutexattr_t mattr;
  pthread_mutexattr_init(&mattr);
  pthread_mutexattr_setpshared(&mattr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&mattr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&state->mutex, &mattr);
  if (rc == 0) {
    rc = pthread_mutex_init(&state->sync.mutex, &mattr);
    if (rc != 0) pthread_mutex_destroy(&state->mutex);
  }
  pthread_mutexattr_destroy(&mattr);
  if (rc != 0) {
    ::munmap(mem, sizeof(SharedState));
    return FailErrno("pthread_mutex_init", rc);
  }
  SharedSegment segment(state);
  segment.MarkOwner();
  return segment;
}

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)),
      owner_pid_(std::exchange(other.owner_pid_, 0)) {}

SharedSegment::~SharedSegment() {
  if (state_ == nullptr) return;
  if (owner_pid_ == ::getpid()) {
    pthread_mutex_destroy(&state_->mutex);
    pthread_mutex_destroy(&state_->sync.mutex);
  }
  ::munmap(state_, sizeof(SharedState));
}

SharedLock::SharedLock(SharedState& state) : state_(state) { Lock(); }

void SharedLock::Lock() {
  int rc = pthread_mutex_lock(&state_.mutex);
  if (rc == EOWNERDEAD) {
    // The fields are kept consistent step by step; see PendingAppend.
    pthread_mutex_consistent(&state_.mutex);
    recovered_ = true;
    Log(LogLevel::kWarning, "shared_lock_recovered", Outcome::kSuccess,
        "reason: previous owner died holding the lock");
  }
}

SharedLock::~SharedLock() { pthread_mutex_unlock(&state_.mutex); }

bool FutexWait(std::atomic<std::uint32_t>& word, std::uint32_t seen,
               std::chrono::milliseconds timeout) {
  timespec ts{};
  ts.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  ts.tv_nsec = static_cast<long>((timeout.count() % 1000) * 1000000);
  long rc = ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAIT, seen, &ts,
                      nullptr, 0);
  return !(rc != 0 && errno == ETIMEDOUT);
}

void FutexWakeAll(std::atomic<std::uint32_t>& word) {
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&word), FUTEX_WAKE, INT_MAX, nullptr,
            nullptr, 0);
}

SyncLock::SyncLock(SyncState& sync) : sync_(sync) {
  if (pthread_mutex_lock(&sync_.mutex) == EOWNERDEAD) pthread_mutex_consistent(&sync_.mutex);
}

SyncLock::~SyncLock() { pthread_mutex_unlock(&sync_.mutex); }

bool SharedLock::Wait(std::chrono::milliseconds timeout) {
  const std::uint32_t seen = state_.changed.load(std::memory_order_acquire);
  pthread_mutex_unlock(&state_.mutex);
  const bool woken = FutexWait(state_.changed, seen, timeout);
  Lock();
  return woken;
}

void SharedLock::Broadcast() {
  state_.changed.fetch_add(1, std::memory_order_release);
  FutexWakeAll(state_.changed);
}

void PublishSettings(SharedState& state, const RuntimeSettings& settings) {
  SharedLock lock(state);
  state.settings = settings;
  state.settings_generation.fetch_add(1, std::memory_order_release);
}

void BeginShutdown(SharedState& state) {
  SharedLock lock(state);
  state.shutting_down = true;
  lock.Broadcast();
}

void BeginRound(SharedState& state, std::uint64_t number) {
  // The new bets file is empty: nothing of it is written or synced yet. Not
  // under `mutex`: the two locks are never held together.
  ResetSyncForNewFile(state.sync);
  SharedLock lock(state);
  for (std::uint32_t a = 1; a <= state.agencies; ++a) {
    AgencySlot& slot = state.slots[a];
    const pid_t owner = slot.owner_pid;
    slot = AgencySlot{};
    slot.owner_pid = owner;  // the worker still lives; ReleaseWorker frees it
    state.metrics.agencies[a].round_bets.store(0, std::memory_order_relaxed);
    state.metrics.agencies[a].finished.store(0, std::memory_order_relaxed);
  }
  state.finished_count = 0;
  state.all_finished_ns = 0;
  state.draw_state = DrawState::kNotYet;
  state.drawer_pid = 0;
  state.total_bets = 0;
  state.pending = PendingAppend{};
  state.betting_closed.store(false, std::memory_order_release);
  WinnerIndex& index = state.winner_index;
  index.skipped = index.foreign = 0;
  index.current = 0;
  index.reach[0] = index.reach[1] = WinnerIndexReach{};
  state.metrics.draw_state.store(static_cast<std::uint32_t>(DrawState::kNotYet),
                                 std::memory_order_relaxed);
  state.metrics.round.store(number, std::memory_order_relaxed);
  state.round.store(number, std::memory_order_release);
  state.drawn_at.store(0, std::memory_order_relaxed);
  lock.Broadcast();
}

void ResetSyncForNewFile(SyncState& sync) {
  SyncLock lock(sync);
  ++sync.file_generation;
  sync.written_end.store(0, std::memory_order_release);
  sync.durable_end.store(0, std::memory_order_release);
}

SyncTotals ReadSyncTotals(SyncState& sync) {
  SyncLock lock(sync);
  return SyncTotals{sync.syncs, sync.covered, sync.durable_end.load(std::memory_order_relaxed)};
}

BettingClosure CloseBetting(SharedState& state) {
  SharedLock lock(state);
  BettingClosure closure{!state.betting_closed, state.finished_count, state.agencies};
  state.betting_closed.store(true, std::memory_order_release);
  lock.Broadcast();  // waiters re-check whether the draw is due
  return closure;
}

WorkerRelease ReleaseWorker(SharedState& state, pid_t pid) {
  WorkerRelease release;
  {
    SharedLock lock(state);
    for (std::uint32_t a = 1; a <= state.agencies; ++a) {
      if (state.slots[a].owner_pid == pid) {
        state.slots[a].owner_pid = 0;
        state.metrics.agencies[a].connected.store(0, std::memory_order_relaxed);
        release.agency = a;
      }
    }
    if (state.draw_state == DrawState::kRunning && state.drawer_pid == pid) {
      state.draw_state = DrawState::kNotYet;
      state.metrics.draw_state.store(static_cast<std::uint32_t>(DrawState::kNotYet),
                                     std::memory_order_relaxed);
      state.drawer_pid = 0;
      release.draw_reset = true;
      lock.Broadcast();
    }
  }
  // A worker killed while it led a group sync (storage/group_commit.h): its
  // waiters take over now, before its pid can be reused by a new worker and
  // pass for the leader still alive. Never under `mutex`, as SyncState says.
  SyncState& sync = state.sync;
  {
    SyncLock lock(sync);
    if (sync.leader == pid) {
      sync.leader = 0;
      sync.completed.fetch_add(1, std::memory_order_release);
      release.sync_leader = true;
    }
  }
  if (release.sync_leader) FutexWakeAll(sync.completed);
  return release;
}

SlotClaim ClaimAgencySlot(SharedState& state, std::uint32_t agency, pid_t pid) {
  SlotClaim claim;
  SharedLock lock(state);
  AgencySlot& slot = state.slots[agency];
  if (slot.owner_pid != 0 && ::kill(slot.owner_pid, 0) != 0 && errno == ESRCH) slot.owner_pid = 0;
  if (slot.owner_pid != 0) {
    claim.holder = slot.owner_pid;
    return claim;
  }
  slot.owner_pid = pid;
  state.metrics.agencies[agency].connected.store(1, std::memory_order_relaxed);
  claim.last_seq = slot.last_seq;
  claim.finished = slot.finished;
  claim.betting_closed = state.betting_closed;
  return claim;
}

void AdvanceStoredProgress(SharedState& state, [[maybe_unused]] const SharedLock& held,
                           std::uint32_t agency, std::uint64_t last_seq, std::uint64_t bets,
                           std::uint64_t digest) {
  assert(held.Holds(state));
  assert(agency >= 1 && agency <= state.agencies);
  AgencySlot& slot = state.slots[agency];
  assert(last_seq >= slot.last_seq);
  slot.last_seq = last_seq;
  slot.bets_stored += bets;
  slot.stored_digest += digest;
  state.total_bets += bets;
  state.metrics.agencies[agency].round_bets.store(slot.bets_stored, std::memory_order_relaxed);
}

void SetStoredProgress(SharedState& state, std::uint32_t agency, const StoredProgress& progress) {
  SharedLock lock(state);
  const AgencySlot& slot = state.slots[agency];
  if (progress.last_seq < slot.last_seq || progress.bets_stored < slot.bets_stored) return;
  // Digests add mod 2^64: the difference is what the new batches added.
  AdvanceStoredProgress(state, lock, agency, progress.last_seq,
                        progress.bets_stored - slot.bets_stored,
                        progress.stored_digest - slot.stored_digest);
}

void RecordBatchDigests(SharedState& state, std::uint32_t agency,
                        std::span<const BatchDigest> digests) {
  if (digests.empty()) return;
  SharedLock lock(state);
  for (const BatchDigest& d : digests) state.slots[agency].digests[d.seq % kBatchDigests] = d;
}

std::optional<BatchDigest> FindBatchDigest(SharedState& state, std::uint32_t agency,
                                           std::uint64_t seq) {
  SharedLock lock(state);
  const BatchDigest& d = state.slots[agency].digests[seq % kBatchDigests];
  if (d.seq != seq || seq == 0) return std::nullopt;
  return d;
}

AgencyStanding ReadAgencyStanding(SharedState& state, std::uint32_t agency) {
  SharedLock lock(state);
  const AgencySlot& slot = state.slots[agency];
  AgencyStanding out;
  out.last_seq = slot.last_seq;
  out.bets_stored = slot.bets_stored;
  out.stored_digest = slot.stored_digest;
  out.finished = slot.finished;
  out.round = state.metrics.round.load(std::memory_order_relaxed);
  out.draw_state = state.draw_state;
  out.betting_closed = state.betting_closed.load(std::memory_order_acquire);
  return out;
}

std::uint32_t CountClaimedSlots(SharedState& state) {
  SharedLock lock(state);
  std::uint32_t claimed = 0;
  for (std::uint32_t a = 1; a <= state.agencies; ++a) claimed += state.slots[a].owner_pid != 0;
  return claimed;
}

std::vector<pid_t> ClaimedSlotOwners(SharedState& state) {
  SharedLock lock(state);
  std::vector<pid_t> owners;
  for (std::uint32_t a = 1; a <= state.agencies; ++a) {
    if (state.slots[a].owner_pid != 0) owners.push_back(state.slots[a].owner_pid);
  }
  return owners;
}

bool SignalIfUnclaimed(SharedState& state, pid_t pid, int sig) {
  SharedLock lock(state);
  for (std::uint32_t a = 1; a <= state.agencies; ++a) {
    if (state.slots[a].owner_pid == pid) return false;
  }
  return ::kill(pid, sig) == 0;
}

void ReleaseAgencySlot(SharedState& state, std::uint32_t agency, pid_t pid) {
  SharedLock lock(state);
  if (state.slots[agency].owner_pid == pid) {
    state.slots[agency].owner_pid = 0;
    state.metrics.agencies[agency].connected.store(0, std::memory_order_relaxed);
  }
}

}  // namespace lottery
