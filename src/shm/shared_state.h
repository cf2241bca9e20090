// The one shared segment of a server: every piece of state that the parent
// and its workers share lives in struct SharedState, mapped MAP_SHARED before
// the first fork() so every worker inherits the same pages.
//
// Lock discipline:
//  - `mutex` (process-shared, robust) guards every field of SharedState
//    below it. Hold it only for short, non-blocking bookkeeping: never across
//    socket I/O, file I/O or the draw.
//  - The bets file has its own exclusive flock() (see BetStore); when both
//    are needed, take the flock first, then the mutex.
//  - A process that dies holding the mutex leaves it EOWNERDEAD; the next
//    locker marks it consistent. Every update below is written so that a
//    half-done one is harmless or repaired by the next owner (see
//    PendingAppend).
//
// Each field has one owning module that writes it (reads are free, under the
// mutex):
//  - AgencySlot::owner_pid: the operations below (ClaimAgencySlot and
//    ReleaseAgencySlot in workers, ReleaseWorker in the parent);
//  - stored progress (last_seq, bets_stored, total_bets, pending, sync,
//    winner_index):
//    storage/ (bet_store.cc, group_commit.cc, recovery.cc), under the bets
//    file's flock;
//  - the draw (finished, finished_count, all_finished_ns, draw_state,
//    drawer_pid, winners_*): worker/draw_barrier.cc, and ReleaseWorker's
//    reset of a drawer that died;
//  - settings, settings_generation, shutting_down, betting_closed:
//    PublishSettings, BeginShutdown and CloseBetting, called by the parent
//    (betting_closed is atomic too, read by workers without the mutex);
//  - metrics: lock-free, with owners of their own (shm/metrics.h).
// The parent creates and finally destroys the segment and touches it only
// through these operations; workers use it through their modules.
#pragma once

#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include <atomic>
#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "common/agency_limit.h"
#include "common/log.h"
#include "common/status.h"
#include "shm/metrics.h"

namespace lottery {

enum class DrawState : std::uint32_t { kNotYet = 0, kRunning = 1, kDone = 2 };

// How many of an agency's latest batches keep a digest: more than the
// agency's default window (16), so every batch a reconnecting agency re-sends
// is checked against what was stored.
inline constexpr std::uint32_t kBatchDigests = 64;

// The digest of a stored batch's rows (seq % kBatchDigests picks the entry;
// seq 0 marks an empty one): the sum of their row digests
// (wire/row_digest.h) at their positions among the agency's stored bets,
// the first of which is `first`.
struct BatchDigest {
  std::uint64_t seq = 0;
  std::uint64_t digest = 0;
  std::uint64_t first = 0;
};

struct AgencySlot {
  pid_t owner_pid = 0;         // worker serving this agency, 0 when free
  std::uint64_t last_seq = 0;  // last stored batch sequence number
  std::uint64_t bets_stored = 0;
  // The sum of the stored bets' row digests (wire/row_digest.h), advanced
  // with bets_stored: WELCOME's stored_digest.
  std::uint64_t stored_digest = 0;
  bool finished = false;  // the agency said FINISHED
  // Where this agency's winners are in the winners file, after the draw.
  std::uint64_t winners_offset = 0;
  std::uint64_t winners_bytes = 0;
  std::uint32_t winners_count = 0;
  // Digests of the latest stored batches (RecordBatchDigests); kept in
  // memory only, so a restarted server cannot check batches stored before.
  BatchDigest digests[kBatchDigests];
};

// A bets-file append in flight. Set before the write and cleared after the
// bookkeeping, so that if its writer dies the next writer can tell whether the
// batch reached the file whole (commit it) or torn (cut it off).
struct PendingAppend {
  bool active = false;
  std::uint32_t agency = 0;
  std::uint64_t seq = 0;
  std::uint64_t count = 0;
  std::uint64_t start = 0;   // file offset where the batch begins
  std::uint64_t length = 0;  // bytes in the batch
  std::uint64_t digest = 0;  // its rows' share of the slot's stored_digest
};

// The winner index (storage/winner_index.h): the documents of the winning
// bets stored so far, so that the draw reads them instead of scanning the
// whole bets file. Kept in memory only: start-up recovery rebuilds it from
// the file. It covers the file's bytes before `indexed_end`; the draw scans
// whatever lies past that. Written by storage/ under the bets file's flock
// and `mutex`.
inline constexpr std::uint32_t kWinnerIndexCapacity = 32768;
inline constexpr std::size_t kIndexedDocumentBytes = 10;  // kMaxDocumentDigits

struct IndexedWinner {
  std::uint32_t agency = 0;
  std::uint8_t length = 0;  // bytes of document used
  char document[kIndexedDocumentBytes] = {};
};

// How far the index reaches. Two copies: an update writes the one not in
// use and then switches `current` with one store, so a writer killed in the
// middle leaves the old reach, never half of a new one.
struct WinnerIndexReach {
  std::uint64_t indexed_end = 0;  // bets-file offset the index covers up to
  std::uint64_t bets = 0;         // well-formed bets before indexed_end
  std::uint32_t count = 0;        // entries that belong to it
};

struct WinnerIndex {
  bool enabled = false;       // false: the draw scans the whole file
  std::uint32_t number = 0;   // the winning number the entries are for
  std::uint64_t skipped = 0;  // lines that do not parse, found at start-up
  std::uint64_t foreign = 0;  // bets of unknown agencies, found at start-up
  std::uint32_t current = 0;  // which of reach[] is in force
  WinnerIndexReach reach[2];
  IndexedWinner entries[kWinnerIndexCapacity];
};

// The settings a reload (SIGHUP) may change while workers run. The parent
// writes them under `mutex` and then bumps `settings_generation`; a worker
// compares the generation (one atomic load, no lock) before each frame and
// copies the settings under the mutex when it moved.
struct RuntimeSettings {
  LogLevel log_level = LogLevel::kInfo;
  std::int64_t read_timeout_ms = 60000;
  std::int64_t hello_timeout_ms = 10000;
  std::int64_t idle_timeout_ms = 60000;
};

// Group commit for storage.sync = "always" (storage/group_commit.h).
// `sync.mutex` (process-shared, robust) guards `leader` and the counters and
// is only held for a few loads and stores, never across fdatasync() and never
// together with SharedState::mutex. One process at a time is the leader: it
// runs fdatasync() with no lock held, then advances durable_end and bumps
// `completed`, on which the writers that wanted their bytes on disk sleep (a
// futex), so one sync wakes every writer it covers at once instead of handing
// a mutex from one to the next.
struct SyncState {
  pthread_mutex_t mutex;
  // Every byte before this offset has been written (advanced after each
  // complete append, under the flock); read without the mutex.
  std::atomic<std::uint64_t> written_end{0};
  // Every byte before this offset is on disk; stored under the mutex, read
  // with or without it.
  std::atomic<std::uint64_t> durable_end{0};
  // Bumped under the mutex each time a leader finishes (either way).
  std::atomic<std::uint32_t> completed{0};
  pid_t leader = 0;  // the process running fdatasync(); 0: none
  // Bumped when a new round's empty bets file replaces the old one
  // (BeginRound): a leader that started before does not move durable_end.
  std::uint64_t file_generation = 0;
  std::uint64_t syncs = 0;    // fdatasync() rounds made
  std::uint64_t covered = 0;  // requests answered by someone else's fdatasync
};

struct SharedState {
  SyncState sync;         // its own lock; see SyncState
  pthread_mutex_t mutex;  // guards everything below
  // Bumped on FINISHED, draw progress and shutdown; waiters sleep on it with
  // a futex. Not a pthread_cond_t: a process killed while waiting on a
  // process-shared condvar leaves it in a state where the next broadcast can
  // block for ever, and workers do get killed.
  std::atomic<std::uint32_t> changed{0};
  std::atomic<std::uint32_t> settings_generation{0};
  RuntimeSettings settings;

  std::uint32_t agencies = 0;
  // The round in progress (its number in the journal's round-start record).
  // Written under `mutex` by start-up recovery and BeginRound; atomic so that
  // an append can tell, under the flock, that the round it opened its file
  // in is over (its file was archived).
  std::atomic<std::uint64_t> round{0};
  // Unix seconds of the round's draw, from its result (0: not drawn); read
  // by the parent without the mutex.
  std::atomic<std::int64_t> drawn_at{0};
  bool shutting_down = false;
  // Betting closed before every agency finished (draw.deadline, SIGUSR2):
  // the draw runs over the agencies that finished; the others are refused.
  // Written under `mutex`; atomic so that a worker's check before each batch
  // (IsBettingClosed) needs no lock: the mutex per batch was a futex convoy
  // of the workers (docs/PERFORMANCE.md).
  std::atomic<bool> betting_closed{false};
  std::uint32_t finished_count = 0;
  // CLOCK_MONOTONIC nanoseconds when the last agency said FINISHED (0: not
  // yet); the benchmark's draw latency runs from here to the first winners.
  std::int64_t all_finished_ns = 0;
  DrawState draw_state = DrawState::kNotYet;
  pid_t drawer_pid = 0;
  std::uint64_t total_bets = 0;
  PendingAppend pending;
  WinnerIndex winner_index;
  AgencySlot slots[kMaxAgencies + 1];  // index 1..agencies; 0 unused

  // Not guarded by `mutex`: lock-free counters that the parent reads
  // without locking (shm/metrics.h).
  ServerMetrics metrics;
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free &&
                  sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "SharedState::changed must be a plain 32-bit word for futex()");

// Owns the mapping. Moving is allowed; copying is not.
class SharedSegment {
 public:
  // Maps and initialises a fresh segment for `agencies` agencies.
  static Result<SharedSegment> Create(std::uint32_t agencies);

  SharedSegment(SharedSegment&& other) noexcept;
  SharedSegment& operator=(SharedSegment&&) = delete;
  SharedSegment(const SharedSegment&) = delete;
  ~SharedSegment();

  SharedState& state() { return *state_; }
  const SharedState& state() const { return *state_; }
  std::uint32_t agencies() const { return state_->agencies; }

  // In the creating process, destroys both mutexes before unmapping.
  // Forked workers must not call it (asserted: a child of the owner sees
  // the owner's pid); their destructor only unmaps.
  void MarkOwner() {
    assert(owner_pid_ == 0 || owner_pid_ == ::getpid());
    owner_pid_ = ::getpid();
  }

 private:
  explicit SharedSegment(SharedState* state) : state_(state) {}
  SharedState* state_ = nullptr;
  pid_t owner_pid_ = 0;
};

// Sleeps while `word` still holds `seen`, at most `timeout`; returns false
// on timeout. A shared futex (not FUTEX_PRIVATE): waiter and waker are
// different processes. A change between reading `seen` and sleeping is not
// lost: the sleep does not start.
bool FutexWait(std::atomic<std::uint32_t>& word, std::uint32_t seen,
               std::chrono::milliseconds timeout);
// Wakes every process sleeping on `word`.
void FutexWakeAll(std::atomic<std::uint32_t>& word);

// RAII lock on SyncState::mutex. A holder that died leaves nothing to
// repair: each critical section stores whole values, and durable_end only
// moves after a sync succeeded.
class SyncLock {
 public:
  explicit SyncLock(SyncState& sync);
  ~SyncLock();
  SyncLock(const SyncLock&) = delete;
  SyncLock& operator=(const SyncLock&) = delete;

 private:
  SyncState& sync_;
};

// RAII lock on SharedState::mutex that repairs a lock left by a dead owner.
class SharedLock {
 public:
  explicit SharedLock(SharedState& state);
  ~SharedLock();
  SharedLock(const SharedLock&) = delete;
  SharedLock& operator=(const SharedLock&) = delete;

  // Whether the previous owner died holding the mutex.
  bool recovered() const { return recovered_; }
  // Whether this lock holds `state`'s mutex: the witness that functions
  // taking a `const SharedLock&` assert.
  bool Holds(const SharedState& state) const { return &state_ == &state; }

  // Releases the mutex, sleeps until `changed` moves or `timeout` passes,
  // and re-acquires the mutex (repairing it if needed). Returns false on
  // timeout. A wake-up between the release and the sleep is not lost.
  bool Wait(std::chrono::milliseconds timeout);
  // Bumps `changed` and wakes every waiter, in any process.
  void Broadcast();

 private:
  void Lock();

  SharedState& state_;
  bool recovered_ = false;
};

// --- Named operations; each takes the mutex itself. ---

// Parent: makes `settings` the workers' runtime settings (a reload).
void PublishSettings(SharedState& state, const RuntimeSettings& settings);

// Parent: tells every worker that the server stops (waiters wake at once).
void BeginShutdown(SharedState& state);

// What ReleaseWorker found of a worker that exited.
struct WorkerRelease {
  std::uint32_t agency = 0;  // the agency slot it held, now free (0: none)
  bool draw_reset = false;   // it died running the draw; the draw is due again
  bool sync_leader = false;  // it died leading a group sync; its waiters take over
};

// Parent, on reaping worker `pid`: frees the agency slot it held and, when
// it died mid-draw, resets the draw so that a waiting worker takes it over;
// when it died leading a group sync (SyncState::leader), clears the lead.
WorkerRelease ReleaseWorker(SharedState& state, pid_t pid);

// What a worker learns when it claims an agency.
struct SlotClaim {
  pid_t holder = 0;             // another live worker serves the agency (claim refused)
  std::uint64_t last_seq = 0;   // the agency's last stored batch
  bool finished = false;        // the agency already said FINISHED
  bool betting_closed = false;  // CloseBetting ran: an agency that did not finish is refused
};

// Worker, on HELLO: claims `agency` for `pid` unless a live worker holds it
// (a holder that died but is not reaped yet does not count).
SlotClaim ClaimAgencySlot(SharedState& state, std::uint32_t agency, pid_t pid);

// What the round holds of an agency, and where the round is: a worker's
// WELCOME, read once what it reports is settled (recovered, durable).
struct AgencyStanding {
  std::uint64_t last_seq = 0;
  std::uint64_t bets_stored = 0;
  std::uint64_t stored_digest = 0;
  bool finished = false;
  std::uint64_t round = 0;  // metrics.round
  DrawState draw_state = DrawState::kNotYet;
  bool betting_closed = false;
};
AgencyStanding ReadAgencyStanding(SharedState& state, std::uint32_t agency);

// Worker, on exit: gives `agency` back if `pid` still holds it.
void ReleaseAgencySlot(SharedState& state, std::uint32_t agency, pid_t pid);

// Parent, at draw.deadline or on SIGUSR2: closes betting. Returns how many
// agencies had finished (the draw runs over them), and whether it was open.
struct BettingClosure {
  bool was_open = false;
  std::uint32_t finished = 0;
  std::uint32_t agencies = 0;
};
BettingClosure CloseBetting(SharedState& state);

// The group commit's offsets back to 0 for a new, empty bets file.
void ResetSyncForNewFile(SyncState& sync);

// What the group commit did in this server's life, for the parent's closing
// log line: SyncState's counters and durable_end, read under sync.mutex.
struct SyncTotals {
  std::uint64_t syncs = 0;        // fdatasync() rounds made
  std::uint64_t covered = 0;      // requests answered by someone else's fdatasync
  std::uint64_t durable_end = 0;  // bytes of the current bets file on disk
};
SyncTotals ReadSyncTotals(SyncState& sync);

// Parent, once the drawn round's files are archived: forgets the round
// (slots, draw, betting closed, the pending append, the winner index's reach,
// the group commit's offsets, the round's metrics) and makes `number` the
// round in progress. With the bets-file backend, call with the bets file's
// flock held (storage/round_archive.cc), so that no append interleaves; the
// PostgreSQL backend's committer has already opened the round in the database.
void BeginRound(SharedState& state, std::uint64_t number);

// Worker, before each batch: whether CloseBetting ran. Without the mutex.
inline bool IsBettingClosed(const SharedState& state) {
  return state.betting_closed.load(std::memory_order_acquire);
}

// Worker, after storing batches of `agency`: remembers their digests, with
// one lock for all of them.
void RecordBatchDigests(SharedState& state, std::uint32_t agency,
                        std::span<const BatchDigest> digests);
// The digest stored for batch `seq` of `agency`, if still remembered.
std::optional<BatchDigest> FindBatchDigest(SharedState& state, std::uint32_t agency,
                                           std::uint64_t seq);

// A batch, or consecutive batches, of `agency` were stored: its slot's
// last_seq becomes `last_seq`, its bets_stored and stored_digest grow by
// `bets` and `digest`, and with them the round's total_bets and the
// agency's round_bets metric. The one place where these move together, so
// that /metrics never drifts from the slots. `held` is the segment's mutex.
void AdvanceStoredProgress(SharedState& state, const SharedLock& held, std::uint32_t agency,
                           std::uint64_t last_seq, std::uint64_t bets, std::uint64_t digest);

// What a backend holds of an agency after a store (the PostgreSQL
// backend's answer): sets its slot's last_seq, bets_stored and
// stored_digest, the round's bets by the difference, and its round_bets
// metric, under the mutex. Never moves the slot back.
struct StoredProgress {
  std::uint64_t last_seq = 0;
  std::uint64_t bets_stored = 0;
  std::uint64_t stored_digest = 0;
};
void SetStoredProgress(SharedState& state, std::uint32_t agency, const StoredProgress& progress);

// Parent: how many agencies a worker serves now (claimed slots).
std::uint32_t CountClaimedSlots(SharedState& state);
// Parent: the workers that serve an agency now (the owners of claimed slots).
std::vector<pid_t> ClaimedSlotOwners(SharedState& state);
// Parent: sends `sig` to worker `pid` unless it holds an agency slot, under
// the lock, so that the worker cannot claim one between the check and the
// signal (SIGKILL then ends it before it can). True when it was signalled.
bool SignalIfUnclaimed(SharedState& state, pid_t pid, int sig);

}  // namespace lottery
