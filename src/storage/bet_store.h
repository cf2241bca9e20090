// BetStore appends bets to the one bets file (format: docs/STORAGE.md and
// storage/bets_file_row.h) with its batch journal. Many worker processes each
// open their own BetStore on the same path; an exclusive flock()
// (storage/file_lock.h) serialises appends, and the bookkeeping that must
// match the file (sequence numbers, counts) is updated in the shared segment
// under that same flock.
//
// The store owns its descriptors. The SharedSegment passed to its methods
// must outlive each call.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/unique_fd.h"
#include "shm/shared_state.h"
#include "storage/batch_storage.h"
#include "storage/sync_mode.h"

namespace lottery {

// The mode of a bets file or journal this server creates: they hold personal
// data (names, documents, birthdates), so not readable by every local user.
inline constexpr mode_t kBetsFileMode = 0640;

// One batch among the rows handed to BetStore::AppendBatches.
struct BatchExtent {
  std::uint64_t seq = 0;
  std::uint32_t count = 0;      // bets in the batch
  std::size_t rows_end = 0;     // where its rows end in the appended bytes
  std::size_t winners_end = 0;  // where its entries end in the winners
  // Its rows' share of the agency's stored digest: their RowDigests at
  // their positions among the agency's stored bets (wire/row_digest.h).
  std::uint64_t digest = 0;
};

// What AppendBatches did: the first `skipped` batches were stored already
// (a dead writer's append, repaired) and not written again; the others end
// at file offset `end` (0 when all were skipped). `bets_stored` and
// `stored_digest` are the agency's slot after it, whatever was skipped.
struct AppendOutcome {
  std::size_t skipped = 0;
  std::uint64_t end = 0;
  std::uint64_t bets_stored = 0;
  std::uint64_t stored_digest = 0;
};

class BetStore final : public BatchStorage {
 public:
  // Opens (creating with mode 0640 when missing) the bets file and its batch
  // journal, `path` + ".journal" (batch_journal.h). With
  // SyncMode::kAlways a newly created file's directory entry is made durable
  // too.
  static Result<BetStore> Open(const std::string& path, SyncMode sync = SyncMode::kAlways);

  // Appends consecutive batches of one agency (seq ascending by one) as a
  // single write of all their complete rows at the end of the file, all or
  // nothing, with one journal record, which carries the last batch's seq and
  // the bets of all (docs/STORAGE.md), and records them in the shared
  // segment. Pass AppendOutcome::end to MakeDurable before acknowledging
  // (several appends can share one MakeDurable). A prefix of batches that a
  // repaired dead writer's append had stored already is skipped. On a write
  // failure the file is cut back to where it was and nothing is recorded.
  // `batches` must not be empty (asserted); their rows_end and winners_end
  // grow and the last ones are rows.size() and winners.size(). `winners`
  // are the bets among the rows that hold the winner index's number
  // (winner_index.h): a caller that passes none for rows that hold some
  // must not let the index be built (RebuildWinnerIndex), or the draw would
  // miss them. The slot's stored_digest grows by the digests of the
  // batches written.
  Result<AppendOutcome> AppendBatches(std::string_view rows, SharedSegment& shared,
                                      std::uint32_t agency, std::span<const BatchExtent> batches,
                                      std::span<const IndexedWinner> winners = {}) override;

  // Group commit (storage/group_commit.h): returns once every byte before
  // `end` is on disk. Does nothing with SyncMode::kNever. When it fails the
  // batches stay recorded: a caller that later acknowledges one of them as
  // "already stored" must call MakeAllDurable first.
  Status MakeDurable(SharedSegment& shared, std::uint64_t end) override;
  // MakeDurable up to everything written so far.
  Status MakeAllDurable(SharedSegment& shared);

  SyncMode sync_mode() const { return sync_; }
  bool GroupsAcks() const override { return sync_ == SyncMode::kAlways; }
  // 64 batches (1 MiB of rows): as many share one fdatasync as the sync
  // needs to keep up (docs/PERFORMANCE.md), and a worker's memory stays
  // flat however big its agency's window.
  AppendLimits Limits() const override { return {64, 1 << 20}; }

  // Recover, then MakeAllDurable: what a dead writer left is settled and
  // counts as acknowledged.
  Status Settle(SharedSegment& shared, std::uint32_t agency) override;

  // The draw from the bets file (bet_store_draw.cc): reads the bytes stored
  // (appends are refused from draw_state kRunning on; the flock waits for
  // one in flight), collects the winners of the agencies that finished,
  // writes the result file durably and marks the round complete in the
  // journal.
  Result<RoundResult> Draw(SharedSegment& shared, std::uint32_t winning_number) override;

  // Repairs an append left behind by a dead writer (ResolvePendingAppend,
  // storage/recovery.h), taking the flock. Call before trusting an agency's
  // last sequence number, e.g. when it reconnects.
  Status Recover(SharedSegment& shared);

  // Records in the journal that the draw of this round ran and its result
  // is durable.
  Status MarkRoundComplete();

  // The round this store's descriptors belong to (SharedState::round, read
  // before Open): an append after the round moved on (its files were
  // archived) fails with kBusy instead of writing to the archive.
  void BindRound(std::uint64_t round) { round_ = round; }

  // FINISHED of `agency`, durably: under the flock, unless betting closed
  // (returns false then, recording nothing), appends its journal record,
  // syncs the journal and marks the agency finished in the segment
  // (`finish`, called under the segment's mutex with the flock held).
  // Returns whether it is finished.
  Result<bool> RecordFinished(SharedSegment& shared, std::uint32_t agency,
                              const std::function<void(SharedState&)>& finish) override;

  // Current size of the file in bytes.
  Result<std::uint64_t> Size() const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }
  int journal_fd() const { return journal_.get(); }

 private:
  BetStore(std::string path, UniqueFd fd, UniqueFd journal, SyncMode sync)
      : path_(std::move(path)), fd_(std::move(fd)), journal_(std::move(journal)), sync_(sync) {}

  std::string path_;
  UniqueFd fd_;
  UniqueFd journal_;
  SyncMode sync_;
  std::optional<std::uint64_t> round_;
};

}  // namespace lottery
