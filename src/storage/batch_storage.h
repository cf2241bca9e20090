// BatchStorage is what a worker stores through, whichever backend holds the
// round (storage.backend): the bets file (BetStore, bet_store.h) or
// PostgreSQL (PgBatchStore, pg_batch_store.h). Contract: a batch is
// acknowledged only once MakeDurable returned for it; the agency's slot in
// the shared segment always says what the backend holds of it; the draw
// returns a result that is already durable.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string_view>

#include "common/status.h"
#include "shm/shared_state.h"
#include "storage/rounds.h"

namespace lottery {

struct AppendOutcome;
struct BatchExtent;

// The most a worker gathers for one append (and acks with one write).
struct AppendLimits {
  std::size_t batches = 0;
  std::size_t row_bytes = 0;
};

class BatchStorage {
 public:
  virtual ~BatchStorage() = default;

  // Stores consecutive batches of one agency as a whole (BetStore::AppendBatches
  // says how); kBusy when the round is over or no longer this server's.
  virtual Result<AppendOutcome> AppendBatches(std::string_view rows, SharedSegment& shared,
                                              std::uint32_t agency,
                                              std::span<const BatchExtent> batches,
                                              std::span<const IndexedWinner> winners) = 0;
  // Returns once every batch stored before `end` (AppendOutcome::end) is
  // durable.
  virtual Status MakeDurable(SharedSegment& shared, std::uint64_t end) = 0;
  // Before WELCOME: settles what another worker of `agency` left behind and
  // makes it durable, so that the slot says what is really stored.
  virtual Status Settle(SharedSegment& shared, std::uint32_t agency) = 0;
  // FINISHED of `agency`, durably; `finish` runs under the segment's mutex
  // the first time only. Returns false, recording nothing, once betting
  // closed.
  virtual Result<bool> RecordFinished(SharedSegment& shared, std::uint32_t agency,
                                      const std::function<void(SharedState&)>& finish) = 0;
  // The draw over the agencies that finished, with `winning_number`: its
  // result is durable when it returns.
  virtual Result<RoundResult> Draw(SharedSegment& shared, std::uint32_t winning_number) = 0;
  // Whether acks are worth holding back while more batches are here, so
  // that one sync or commit covers them.
  virtual bool GroupsAcks() const = 0;
  // How much one append takes at most.
  virtual AppendLimits Limits() const = 0;
};

}  // namespace lottery
