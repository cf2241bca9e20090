// Recovery of the bets file and its journal: at start-up, before any worker
// exists, and when a worker finds an append left behind by a dead writer.
// StartupRecovery is the parent's one way into storage: it opens the files,
// cuts a torn last row, resumes or starts the round, and publishes what is
// stored to the shared segment; the parent never sees a row.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "shm/shared_state.h"
#include "storage/bet_store.h"
#include "storage/file_lock.h"
#include "storage/rounds.h"
#include "storage/sync_mode.h"

namespace lottery {

struct AgencyProgress {
  std::uint64_t last_seq = 0;
  std::uint64_t bets = 0;
  bool finished = false;  // its FINISHED is in the journal (or it took part in the draw)
};

// What start-up recovery found and did.
struct RoundRecovery {
  bool resumed = false;  // the journal's round goes on (open, closed or drawn)
  RoundState state = RoundState::kOpen;
  bool betting_closed = false;        // the journal says betting closed
  std::optional<RoundResult> result;  // state kDrawn: the round's durable result
  // Where the round's rows begin in the bets file (its round-start record's
  // `end`); rows before belong to earlier rounds.
  std::uint64_t begin = 0;
  // The round's number, kept in its round-start record: 1 for the first
  // round of a journal, one more than the last round's for a new round
  // (0: resumed from a journal written before rounds were numbered).
  std::uint64_t number = 1;
  std::vector<AgencyProgress> agencies;  // index 1..N; 0 unused
  std::uint64_t batches = 0;
  std::uint64_t bets = 0;
  std::uint64_t data_bytes_cut = 0;     // rows no journal record covers
  std::uint64_t journal_bytes_cut = 0;  // a torn record, or records past the rows
};

// Brings the bets file and the journal into agreement and returns the round
// they describe. `result` is the current round's result file, when there is
// one (storage/rounds.h).
//  - A round whose result is on disk is drawn: nothing is cut, and a missing
//    round-complete record (a crash between the two) is written.
//  - An undrawn round (a round-start record, then batch, FINISHED and
//    betting-closed records) is resumed: rows past the last batch record are
//    cut (they were never acknowledged), and batch records whose rows are
//    not all in the file are dropped, with every record after them.
//  - Without a journal, round 1 starts over whatever the bets file holds.
// Fails (kConfig), changing nothing, when a record names an agency above
// `agencies`, and (kCorruptData) when the journal says the round was drawn
// but `result` is not its result. Call with the bets file's flock held:
// `flocked` is that lock (asserted).
Result<RoundRecovery> RecoverRound(const FileLock& flocked, int data_fd, int journal_fd,
                                   std::uint32_t agencies,
                                   const std::optional<RoundResult>& result = std::nullopt);

// Repairs the file after a writer died mid-append (SharedState::pending):
// commits a batch that reached the file whole (writing its journal record if
// the writer did not), cuts off a torn one. Call with the flock held and the
// shared mutex locked: `flocked` and `held` are those locks.
void ResolvePendingAppend(const FileLock& flocked, const SharedLock& held, int fd, int journal_fd,
                          SharedState& state);

// What rebuilding the winner index (storage/winner_index.h) found.
struct WinnerIndexSummary {
  bool enabled = false;    // false: the draw will scan the whole file
  std::uint64_t bets = 0;  // bets in the file
  std::uint64_t winners = 0;
};

// The start-up steps, in order: Open (which first finishes an interrupted
// open of the next round), CutTornTail, RecoverRound, Publish, IndexWinners.
// IndexWinners' one scan of the file also gives each agency's stored digest
// for the round Publish published (WELCOME's stored_digest), which the
// journal does not carry.
class StartupRecovery {
 public:
  // Opens (creating when missing) the bets file and its journal.
  static Result<StartupRecovery> Open(const std::string& path, SyncMode sync);

  // A last line without its line end is what a crash in the middle of a
  // write leaves; it is cut off (taking the flock). Returns the number of
  // bytes cut (0 when the file ends cleanly).
  Result<std::uint64_t> CutTornTail();

  // RecoverRound of the current round under the flock, with its result
  // file when there is one.
  Result<RoundRecovery> RecoverCurrentRound(std::uint32_t agencies);

  // The round that Open started when it finished an interrupted open or
  // archived a round drawn by an earlier release (FinishInterruptedOpen).
  std::optional<std::uint64_t> opened_round() const { return opened_round_; }

  // Writes what `round` says is stored into the segment, and counts the
  // bytes already in the file as written (the first sync covers them).
  // Returns the size of the bets file.
  Result<std::uint64_t> Publish(const RoundRecovery& round, SharedSegment& shared);

  // Rebuilds the winner index for `winning_number` from one scan of the
  // file (RebuildWinnerIndex), so that the draw need not scan it again. The
  // same scan digests the rows of the round Publish published, agency by
  // agency, and sets each slot's stored_digest; it fails (kCorruptData)
  // when an agency's rows there are not as many as its journal records say.
  Result<WinnerIndexSummary> IndexWinners(SharedSegment& shared, std::uint32_t agencies,
                                          std::uint32_t winning_number);

 private:
  explicit StartupRecovery(BetStore store) : store_(std::move(store)) {}
  BetStore store_;
  std::optional<std::uint64_t> opened_round_;
  // What Publish published: the round's first byte and each agency's bets
  // per the journal (index 1..N). Empty before Publish or for a new round.
  std::uint64_t round_begin_ = 0;
  std::vector<AgencyProgress> round_agencies_;
};

}  // namespace lottery
