// BetStore appends bets to the one bets file (format: docs/STORAGE.md) and
// reads them back for the draw. Many worker processes each open their own
// BetStore on the same path; an exclusive flock() serialises appends, and the
// bookkeeping that must match the file (sequence numbers, counts) is updated
// in the shared segment under that same flock.
//
// The store owns its descriptor. The SharedSegment passed to Append must
// outlive the call.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "batch_journal.h"
#include "bet.h"
#include "shared_state.h"
#include "status.h"
#include "sync_mode.h"
#include "unique_fd.h"

namespace lottery {

class BetStore {
 public:
  // Opens (creating with mode 0644 when missing) the bets file and its batch
  // journal, `path` + ".journal" (batch_journal.h). With
  // SyncMode::kAlways a newly created file's directory entry is made durable
  // too.
  static Result<BetStore> Open(const std::string& path, SyncMode sync = SyncMode::kAlways);

  // Appends one batch of complete CSV rows as a single write at the end of
  // the file, all or nothing, and records in the shared segment that batch
  // `seq` of `agency` (with `count` bets) is stored. With SyncMode::kAlways
  // it returns only once the batch is on disk (MakeDurable). Returns false,
  // writing nothing, when repairing a dead writer's append shows that batch
  // `seq` is already stored. On a write failure the file is cut back to where
  // it was and nothing is recorded. When only the fdatasync() fails the
  // batch stays recorded: a caller that then acknowledges it as "already
  // stored" must call MakeAllDurable first.
  Result<bool> Append(std::string_view rows, SharedSegment& shared, std::uint32_t agency,
                      std::uint64_t seq, std::uint64_t count);

  // Append without the wait for durability, for a caller that acknowledges
  // several batches after one MakeDurable: returns the offset where the
  // batch ends (pass it to MakeDurable before acknowledging), or nothing
  // when batch `seq` was already stored.
  Result<std::optional<std::uint64_t>> AppendUnsynced(std::string_view rows, SharedSegment& shared,
                                                      std::uint32_t agency, std::uint64_t seq,
                                                      std::uint64_t count) {
    return AppendUnderLock(rows, shared, agency, seq, count);
  }

  // Group commit: returns once every byte before `end` is on disk, running
  // fdatasync() only when no sync since that byte was written covers it.
  // Does nothing with SyncMode::kNever.
  Status MakeDurable(SharedSegment& shared, std::uint64_t end);
  // MakeDurable up to everything written so far.
  Status MakeAllDurable(SharedSegment& shared);

  SyncMode sync_mode() const { return sync_; }

  // Repairs an append left behind by a dead writer (see
  // ResolvePendingAppend), taking the flock. Call before trusting an
  // agency's last sequence number, e.g. when it reconnects.
  Status Recover(SharedSegment& shared);

  // Start-up recovery of the round (RecoverRound, under the flock): call in
  // the parent before any worker runs.
  Result<RoundRecovery> RecoverRound(std::uint32_t agencies);

  // Records in the journal that the draw of this round ran, so that the next
  // start begins a new round.
  Status MarkRoundComplete();

  // Start-up recovery: a last line without its line end is what a crash in
  // the middle of a write leaves; it is cut off (taking the flock). Returns
  // the number of bytes cut (0 when the file ends cleanly).
  Result<std::uint64_t> CutTornTail();

  // Calls `fn` for every complete, well-formed bet in file order. Lines that
  // do not parse and a torn last line are skipped and counted in `skipped`.
  Status ForEachBet(const std::function<void(const BetView&)>& fn, std::uint64_t& skipped) const;

  // Current size of the file in bytes.
  Result<std::uint64_t> Size() const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  int journal_fd() const { return journal_.get(); }

 private:
  // Append's part under the flock: returns the file offset where the batch
  // ends, or nothing when it was already stored.
  Result<std::optional<std::uint64_t>> AppendUnderLock(std::string_view rows, SharedSegment& shared,
                                        std::uint32_t agency, std::uint64_t seq,
                                        std::uint64_t count);

  BetStore(std::string path, UniqueFd fd, UniqueFd journal, SyncMode sync)
      : path_(std::move(path)), fd_(std::move(fd)), journal_(std::move(journal)), sync_(sync) {}

  std::string path_;
  UniqueFd fd_;
  UniqueFd journal_;
  SyncMode sync_;
};

// Repairs the file after a writer died mid-append: commits a batch that
// reached the file whole (writing its journal record if the writer did not),
// cuts off a torn one. Call with the flock held and the shared mutex locked.
// Exposed for tests.
void ResolvePendingAppend(int fd, int journal_fd, SharedState& state);

}  // namespace lottery
