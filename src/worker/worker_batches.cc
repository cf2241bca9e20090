#include "worker/worker_session.h"

#include <algorithm>
#include <cstring>
#include <string>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/log.h"
#include "storage/bets_file_row.h"
#include "storage/winner_index.h"
#include "wire/bet.h"
#include "wire/bet_row.h"

namespace lottery {
namespace {

// A 64-bit digest that tells a re-sent batch from another one with the same
// seq (an agency whose dataset changed); not a defence against a forger, who
// could not say HELLO as the agency in the first place. Eight bytes per
// multiply (xxHash64's round and avalanche) in four independent lanes, so
// that the multiplies overlap: byte-at-a-time FNV-1a over every payload cost
// about 50 ns of a worker's CPU per bet, two lanes about 7
// (docs/PERFORMANCE.md). Kept in memory only: it may change between
// versions.
std::uint64_t BatchDigestOf(std::string_view payload) {
  constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
  constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
  auto round = [](std::uint64_t acc, std::uint64_t word) {
    acc += word * kPrime2;
    acc = (acc << 31) | (acc >> 33);
    return acc * kPrime1;
  };
  std::uint64_t lane[4] = {kPrime1 ^ payload.size(), kPrime2, kPrime1 + kPrime2, 0};
  const char* p = payload.data();
  std::size_t n = payload.size();
  for (; n >= 32; p += 32, n -= 32) {
    std::uint64_t w[4];
    std::memcpy(w, p, 32);
    for (int i = 0; i < 4; ++i) lane[i] = round(lane[i], w[i]);
  }
  std::uint64_t tail[4] = {0, 0, 0, 0};
  std::memcpy(tail, p, n);
  for (int i = 0; i < 4; ++i) lane[i] = round(lane[i], tail[i]);
  auto rotl = [](std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); };
  std::uint64_t h = lane[0] ^ rotl(lane[1], 7) ^ rotl(lane[2], 12) ^ rotl(lane[3], 18);
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime1;
  h ^= h >> 32;
  return h;
}

}  // namespace

void Worker::QueueAck(std::uint64_t seq, std::uint16_t count, std::uint64_t durable_end,
                      Clock::time_point received) {
  EncodeAck(acks_, Ack{seq, count});
  ++acks_queued_;
  acks_received_.push_back(received);
  ack_durable_end_ = std::max(ack_durable_end_, durable_end);
}

void Worker::CountRejectedBatch(std::uint16_t count) {
  AgencyMetrics& m = shared_.state().metrics.agencies[agency_];
  m.batches_rejected.fetch_add(1, std::memory_order_relaxed);
  m.bets_rejected.fetch_add(count, std::memory_order_relaxed);
}

bool Worker::RejectBatch(std::uint16_t count, ErrorCode code, std::string message,
                         std::uint32_t bet_index) {
  CountRejectedBatch(count);
  return SendError(code, std::move(message), bet_index);
}

bool Worker::AckRepeatedBatch(std::uint64_t seq, std::uint16_t count, Clock::time_point received) {
  Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess,
      "cantidad: {} | agency: {} | seq: {} | detail: repeated batch, already stored", count,
      agency_, seq);
  QueueAck(seq, count, shared_.state().sync.written_end.load(std::memory_order_acquire), received);
  return true;
}

bool Worker::FlushAcks() {
  if (!StorePendingBatches()) return false;
  if (acks_queued_ == 0) return true;
  const std::uint32_t batches = acks_queued_;
  acks_queued_ = 0;
  Status durable = store_.MakeDurable(shared_, ack_durable_end_);
  ack_durable_end_ = 0;
  if (!durable) {
    acks_.clear();
    acks_received_.clear();
    Log(LogLevel::kError, "apuesta_recibida", Outcome::kFail,
        "agency: {} | batches: {} | error: not durable, not acknowledged: {}", agency_, batches,
        durable.error().message);
    out_.clear();
    EncodeError(out_, ErrorReply{ErrorCode::kStorageFailed, kNoBetIndex,
                                 fmt::format("{} batches not durable: {}", batches,
                                             durable.error().message)});
    WriteRaw(out_);
    return false;
  }
  CRASH_POINT("before_ack");
  bool sent = WriteRaw(acks_);
  acks_.clear();
  if (sent) {
    SharedHistogram& latency = shared_.state().metrics.batch_ack;
    const Clock::time_point now = Clock::now();
    for (Clock::time_point received : acks_received_) latency.Record(now - received);
  }
  acks_received_.clear();
  return sent;
}

bool Worker::StorePendingBatches() {
  if (pending_extents_.empty()) return true;
  auto stored = store_.AppendBatches(pending_rows_, shared_, agency_, pending_extents_,
                                     pending_winners_);
  // Taken out first: the replies below flush through here again.
  std::vector<BatchExtent> extents = std::move(pending_extents_);
  std::vector<PendingBatch> batches = std::move(pending_batches_);
  const std::size_t bytes = pending_rows_.size();
  pending_extents_.clear();
  pending_batches_.clear();
  pending_rows_.clear();
  pending_winners_.clear();
  if (!stored) {
    std::uint64_t count = 0;
    for (const BatchExtent& e : extents) {
      count += e.count;
      CountRejectedBatch(static_cast<std::uint16_t>(e.count));
    }
    Log(LogLevel::kError, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {} | error: {}",
        count, agency_, stored.error().message);
    if (stored.error().kind == ErrorKind::kBusy) {
      // The draw started, or the round is over: these bets are not this round's.
      if (IsBettingClosed(shared_.state())) return SendBettingClosed();
      SendError(ErrorCode::kShuttingDown, stored.error().message);
      return false;
    }
    return SendError(ErrorCode::kStorageFailed,
                     fmt::format("batch {} not stored: {}", extents.front().seq,
                                 stored.error().message));
  }
  stored_seq_ = std::max(stored_seq_, extents.back().seq);
  stored_digests_.clear();
  std::uint64_t bets = 0;
  {
    // One write() for the group's lines, not one per batch (log.h).
    HeldLogLines hold;
    for (std::size_t i = 0; i < extents.size(); ++i) {
      const BatchExtent& e = extents[i];
      const auto count = static_cast<std::uint16_t>(e.count);
      if (i < stored->skipped) {
        // A worker that died after writing this batch had stored it already.
        AckRepeatedBatch(e.seq, count, batches[i].received);
        continue;
      }
      stored_digests_.push_back(BatchDigest{e.seq, batches[i].digest});
      Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess,
          "cantidad: {} | agency: {} | seq: {}", count, agency_, e.seq);
      bets += count;
      QueueAck(e.seq, count, stored->end, batches[i].received);
    }
  }
  RecordBatchDigests(shared_.state(), agency_, stored_digests_);
  AgencyMetrics& m = shared_.state().metrics.agencies[agency_];
  m.bets_stored.fetch_add(bets, std::memory_order_relaxed);
  m.batches_stored.fetch_add(stored_digests_.size(), std::memory_order_relaxed);
  if (stored->skipped < extents.size()) {
    const std::size_t from = stored->skipped ? extents[stored->skipped - 1].rows_end : 0;
    shared_.state().metrics.bytes_stored.fetch_add(bytes - from, std::memory_order_relaxed);
  }
  return true;
}

bool Worker::HandleBets(std::string_view payload) {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "BETS before HELLO");
  if (finished_) return SendError(ErrorCode::kOutOfOrder, "BETS after FINISHED");
  const Clock::time_point received = Clock::now();
  BetBatchDecoder decoder(payload);
  if (Status st = decoder.Start(); !st) return SendError(ErrorCode::kMalformed, st.error().message);
  const std::uint64_t seq = decoder.seq();
  const std::uint16_t count = decoder.count();
  // Only the batch right after the pending ones joins them; anything else is
  // judged against what is stored, so those are stored first.
  if (!pending_extents_.empty() && seq != pending_extents_.back().seq + 1) {
    if (!StorePendingBatches()) return false;
  }
  // No lock on this hot path: the worker knows what it stored (stored_seq_).
  std::uint64_t last_seq = stored_seq_;
  if (!pending_extents_.empty()) last_seq = pending_extents_.back().seq;
  if (IsBettingClosed(shared_.state())) {
    CountRejectedBatch(count);
    return SendBettingClosed();
  }
  if (seq <= last_seq) {
    // A batch re-sent after a reconnect: it is stored already, but its
    // first ack may never have gone out because its sync failed. Only if it
    // is the same batch.
    if (auto stored = FindBatchDigest(shared_.state(), agency_, seq);
        stored && *stored != BatchDigestOf(payload)) {
      Log(LogLevel::kWarning, "replay_mismatch", Outcome::kFail,
          "agency: {} | ip: {} | seq: {} | cantidad: {} | detail: a batch with this number was "
          "stored with other content; this one is not stored",
          agency_, peer_, seq, count);
      return RejectBatch(count, ErrorCode::kReplayMismatch,
                       fmt::format("batch {} was stored with other content; the re-sent batch "
                                   "differs and is not stored",
                                   seq));
    }
    return AckRepeatedBatch(seq, count, received);
  }
  if (seq != last_seq + 1) {
    Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {} | seq: {}",
        count, agency_, seq);
    return RejectBatch(count, ErrorCode::kSequenceGap,
                     fmt::format("batch {} after {}: expected {}", seq, last_seq, last_seq + 1));
  }
  const Date today = Today();
  const std::size_t rows_mark = pending_rows_.size();
  const std::size_t winners_mark = pending_winners_.size();
  auto refuse = [&](ErrorCode code, std::string message, std::uint32_t index) {
    // This batch's rows go; the pending batches before it are still stored
    // (and acked) before the error goes out.
    pending_rows_.resize(rows_mark);
    pending_winners_.resize(winners_mark);
    return RejectBatch(count, code, std::move(message), index);
  };
  // Each row is checked where it lies in the frame and stored as it came:
  // the agency sends the row the file holds (wire/bet_row.h).
  BetView bet;
  std::string_view row;
  for (std::uint32_t index = 0;; ++index) {
    if (!decoder.NextRow(row)) {
      if (!decoder.failed()) break;
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {}", count,
          agency_);
      return refuse(ErrorCode::kMalformed, decoder.Next().error().message, kNoBetIndex);
    }
    if (auto reason = ParseBetRow(row, today, bet, row_scratch_)) {
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail,
          "cantidad: {} | agency: {} | seq: {} | bet: {} | error: {}", count, agency_, seq, index,
          *reason);
      return refuse(ErrorCode::kInvalidBet,
                    fmt::format("bet {} (row '{}'): {}", index, LogSafe(row, 64), *reason), index);
    }
    AppendStoredRow(pending_rows_, agency_column_, row);
    if (HasWon(bet, winning_number_)) AddIndexedWinner(pending_winners_, agency_, bet.document);
  }
  pending_extents_.push_back(BatchExtent{seq, count, pending_rows_.size(), pending_winners_.size()});
  pending_batches_.push_back(PendingBatch{BatchDigestOf(payload), received});
  if (count == 1 || LogEnabled(LogLevel::kDebug)) {
    // Each bet is logged as stored: store it now, while its frame is at hand.
    if (!StorePendingBatches()) return false;
    LogLevel level = count == 1 ? LogLevel::kInfo : LogLevel::kDebug;
    BetBatchDecoder again(payload);
    (void)again.Start();
    while (again.NextRow(row)) {
      if (ParseBetRow(row, today, bet, row_scratch_)) break;  // checked above: cannot fail
      Log(level, "apuesta_almacenada", Outcome::kSuccess, "dni: {} | numero: {}", bet.document,
          bet.number);
    }
  }
  return true;
}

}  // namespace lottery
