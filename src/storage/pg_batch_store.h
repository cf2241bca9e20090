// PgBatchStore is a worker's BatchStorage on the PostgreSQL backend: every
// operation is a request to one of the server's committers
// (storage/pg_committer.h), which runs it in a transaction. A batch is
// durable once its store request is answered (its COMMIT returned), so
// MakeDurable has nothing left to do. After each answer the agency's slot
// is set to what the database holds (SetStoredProgress).
#pragma once

#include <cstdint>
#include <string>

#include "storage/batch_storage.h"
#include "storage/bet_store.h"
#include "storage/pg_committer.h"
#include "wire/protocol.h"

namespace lottery {

class PgBatchStore final : public BatchStorage {
 public:
  // `round`: SharedState::round when the worker started; a request for it
  // after the round moved on is refused by the database (kBusy).
  PgBatchStore(std::string committer_address, std::uint64_t round)
      : link_(std::move(committer_address)), round_(round) {}

  Result<AppendOutcome> AppendBatches(std::string_view rows, SharedSegment& shared,
                                      std::uint32_t agency, std::span<const BatchExtent> batches,
                                      std::span<const IndexedWinner> winners) override;
  Status MakeDurable(SharedSegment&, std::uint64_t) override { return Ok(); }
  Status Settle(SharedSegment& shared, std::uint32_t agency) override;
  Result<bool> RecordFinished(SharedSegment& shared, std::uint32_t agency,
                              const std::function<void(SharedState&)>& finish) override;
  Result<RoundResult> Draw(SharedSegment& shared, std::uint32_t winning_number) override;
  // A commit covers every batch gathered before it.
  bool GroupsAcks() const override { return true; }
  // An agency's whole default window, 256 batches (4 MiB of rows): each
  // store is a transaction, and a COMMIT per 256 batches instead of 64
  // cut the database's CPU per round by a tenth (docs/PERFORMANCE.md).
  AppendLimits Limits() const override { return {kDefaultBatchWindow, 4 << 20}; }

 private:
  // Sends `request`; a refusal comes back as an error (kBusy: fenced or the
  // round is not open; kIo: the database or the committer failed).
  Result<PgReply> Call(const PgRequest& request);

  PgCommitterLink link_;
  std::uint64_t round_;
};

}  // namespace lottery
