#include "storage/pg_batch_store.h"

#include <ctime>

#include <fmt/format.h>

namespace lottery {
namespace {

StoredProgress ToStored(const PgAgencyProgress& p) {
  return StoredProgress{p.last_seq, p.bets_stored, p.stored_digest};
}

std::uint64_t SlotBetsStored(SharedSegment& shared, std::uint32_t agency) {
  SharedLock lock(shared.state());
  return shared.state().slots[agency].bets_stored;
}

}  // namespace

Result<PgReply> PgBatchStore::Call(const PgRequest& request) {
  auto reply = link_.Call(request);
  if (!reply) return reply;
  if (reply->status == kReplyBusy) return Fail(ErrorKind::kBusy, reply->message);
  if (reply->status != kReplyOk) {
    return Fail(ErrorKind::kIo, fmt::format("the database failed: {}", reply->message));
  }
  return reply;
}

Result<AppendOutcome> PgBatchStore::AppendBatches(std::string_view rows, SharedSegment& shared,
                                                  std::uint32_t agency,
                                                  std::span<const BatchExtent> batches,
                                                  std::span<const IndexedWinner>) {
  PgRequest request;
  request.kind = PgRequestKind::kStore;
  request.round = round_;
  request.agency = agency;
  request.prev_seq = batches.front().seq - 1;
  // This worker alone stores for the agency, and the slot says what the
  // database held after its last answer.
  request.first_position = SlotBetsStored(shared, agency);
  request.batches.assign(batches.begin(), batches.end());
  request.rows = rows;
  auto reply = Call(request);
  if (!reply) return std::unexpected(reply.error());
  SetStoredProgress(shared.state(), agency, ToStored(reply->progress));
  AppendOutcome outcome;
  outcome.skipped = reply->skipped;
  outcome.bets_stored = reply->progress.bets_stored;
  outcome.stored_digest = reply->progress.stored_digest;
  return outcome;
}

Status PgBatchStore::Settle(SharedSegment& shared, std::uint32_t agency) {
  PgRequest request;
  request.kind = PgRequestKind::kProgress;
  request.round = round_;
  request.agency = agency;
  auto reply = Call(request);
  if (!reply) return std::unexpected(reply.error());
  SetStoredProgress(shared.state(), agency, ToStored(reply->progress));
  return Ok();
}

Result<bool> PgBatchStore::RecordFinished(SharedSegment& shared, std::uint32_t agency,
                                          const std::function<void(SharedState&)>& finish) {
  SharedState& state = shared.state();
  {
    SharedLock lock(state);
    if (state.slots[agency].finished) return true;
    if (state.betting_closed) return false;
  }
  PgRequest request;
  request.kind = PgRequestKind::kFinished;
  request.round = round_;
  request.agency = agency;
  auto reply = Call(request);
  if (!reply) return std::unexpected(reply.error());
  if (!reply->yes) return false;
  SharedLock lock(state);
  if (!state.slots[agency].finished) finish(state);
  return true;
}

Result<RoundResult> PgBatchStore::Draw(SharedSegment& shared, std::uint32_t winning_number) {
  PgRequest request;
  request.kind = PgRequestKind::kDraw;
  request.round = round_;
  request.agencies = shared.state().agencies;
  request.winning_number = winning_number;
  request.drawn_at = static_cast<std::int64_t>(::time(nullptr));
  auto reply = Call(request);
  if (!reply) return std::unexpected(reply.error());
  return DecodeRoundResult(reply->result);
}

}  // namespace lottery
