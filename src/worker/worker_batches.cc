#include "worker/worker_session.h"

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/log.h"
#include "storage/bets_file_row.h"
#include "storage/winner_index.h"
#include "wire/bet.h"
#include "wire/bet_row.h"
#include "wire/row_digest.h"

namespace lottery {

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
  Status durable = store_->MakeDurable(shared_, ack_durable_end_);
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

bool Worker::RefuseUnstored(const std::vector<BatchExtent>& extents, const Error& error) {
  std::uint64_t count = 0;
  for (const BatchExtent& e : extents) {
    count += e.count;
    CountRejectedBatch(static_cast<std::uint16_t>(e.count));
  }
  Log(LogLevel::kError, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {} | error: {}",
      count, agency_, error.message);
  if (error.kind == ErrorKind::kBusy) {
    // The draw started, or the round is over: these bets are not this round's.
    if (IsBettingClosed(shared_.state())) return SendBettingClosed();
    SendError(ErrorCode::kShuttingDown, error.message);
    return false;
  }
  return SendError(ErrorCode::kStorageFailed,
                   fmt::format("batch {} not stored: {}", extents.front().seq, error.message));
}

bool Worker::StorePendingBatches() {
  if (pending_extents_.empty()) return true;
  auto stored =
      store_->AppendBatches(pending_rows_, shared_, agency_, pending_extents_, pending_winners_);
  // Taken out first: the replies below flush through here again.
  std::vector<BatchExtent> extents = std::move(pending_extents_);
  std::vector<PendingBatch> batches = std::move(pending_batches_);
  const std::size_t bytes = pending_rows_.size();
  pending_extents_.clear();
  pending_batches_.clear();
  pending_rows_.clear();
  pending_winners_.clear();
  pending_bets_ = 0;
  if (!stored) return RefuseUnstored(extents, stored.error());
  stored_seq_ = std::max(stored_seq_, extents.back().seq);
  stored_bets_ = stored->bets_stored;
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
      stored_digests_.push_back(BatchDigest{e.seq, e.digest, batches[i].first});
      Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess,
          "cantidad: {} | agency: {} | seq: {}", count, agency_, e.seq);
      bets += count;
      QueueAck(e.seq, count, stored->end, batches[i].received);
    }
  }
  RecordBatchDigests(shared_.state(), agency_, stored_digests_);
  AgencyMetrics& m = shared_.state().metrics.agencies[agency_];
  m.bets_stored.fetch_add(bets, std::memory_order_relaxed);
  session_bets_stored_ += bets;
  m.batches_stored.fetch_add(stored_digests_.size(), std::memory_order_relaxed);
  if (stored->skipped < extents.size()) {
    const std::size_t from = stored->skipped ? extents[stored->skipped - 1].rows_end : 0;
    shared_.state().metrics.bytes_stored.fetch_add(bytes - from, std::memory_order_relaxed);
  }
  return true;
}

// HandleBets runs once per batch of up to thousands of bets: its steps are
// inline members defined here, above it, so that it compiles to one
// function as before; the refusals and the DEBUG log are out of line.

bool Worker::AnswerRepeatedBatch(std::string_view payload, std::uint64_t seq, std::uint16_t count,
                                 Clock::time_point received) {
  // Its first ack may never have gone out because its sync failed. Only
  // if it is the same batch.
  if (auto stored = FindBatchDigest(shared_.state(), agency_, seq);
      stored && stored->digest != BetsPayloadDigest(payload, stored->first)) {
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

[[gnu::always_inline]] inline std::optional<bool> Worker::AnswerUntakenBatch(
    std::string_view payload, std::uint64_t seq, std::uint16_t count, Clock::time_point received) {
  // No lock on this hot path: the worker knows what it stored (stored_seq_).
  std::uint64_t last_seq = stored_seq_;
  if (!pending_extents_.empty()) last_seq = pending_extents_.back().seq;
  if (IsBettingClosed(shared_.state())) {
    CountRejectedBatch(count);
    return SendBettingClosed();
  }
  // A batch re-sent after a reconnect: it is stored already.
  if (seq <= last_seq) return AnswerRepeatedBatch(payload, seq, count, received);
  if (seq != last_seq + 1) {
    Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail,
        "cantidad: {} | agency: {} | seq: {}", count, agency_, seq);
    return RejectBatch(count, ErrorCode::kSequenceGap,
                       fmt::format("batch {} after {}: expected {}", seq, last_seq, last_seq + 1));
  }
  return std::nullopt;
}

bool Worker::RefuseBatch(std::uint16_t count, std::size_t rows_mark, std::size_t winners_mark,
                         ErrorCode code, std::string message, std::uint32_t index) {
  pending_rows_.resize(rows_mark);
  pending_winners_.resize(winners_mark);
  return RejectBatch(count, code, std::move(message), index);
}

[[gnu::always_inline]] inline std::optional<bool> Worker::PendRows(
    BetBatchDecoder& decoder, std::uint64_t seq, std::uint16_t count, const Date& today,
    std::uint64_t first, BetView& bet, std::uint64_t& digest) {
  const std::size_t rows_mark = pending_rows_.size();
  const std::size_t winners_mark = pending_winners_.size();
  // Each row is checked where it lies in the frame and stored as it came:
  // the agency sends the row the file holds (wire/bet_row.h).
  std::string_view row;
  for (std::uint32_t index = 0;; ++index) {
    if (!decoder.NextRow(row)) {
      if (!decoder.failed()) return std::nullopt;
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {}",
          count, agency_);
      return RefuseBatch(count, rows_mark, winners_mark, ErrorCode::kMalformed,
                         decoder.Next().error().message, kNoBetIndex);
    }
    if (auto reason = ParseBetRow(row, today, bet, row_scratch_)) {
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail,
          "cantidad: {} | agency: {} | seq: {} | bet: {} | error: {}", count, agency_, seq, index,
          *reason);
      return RefuseBatch(count, rows_mark, winners_mark, ErrorCode::kInvalidBet,
                         fmt::format("bet {} (row '{}'): {}", index, LogSafe(row, 64), *reason),
                         index);
    }
    digest += RowDigest(row, first + index);
    AppendStoredRow(pending_rows_, agency_column_, row);
    if (HasWon(bet, winning_number_)) AddIndexedWinner(pending_winners_, agency_, bet.document);
  }
}

[[gnu::always_inline]] inline void Worker::PendBatch(std::uint64_t seq, std::uint16_t count,
                                                     std::uint64_t first, std::uint64_t digest,
                                                     Clock::time_point received) {
  pending_extents_.push_back(
      BatchExtent{seq, count, pending_rows_.size(), pending_winners_.size(), digest});
  pending_batches_.push_back(PendingBatch{first, received});
  pending_bets_ += count;
}

[[gnu::always_inline]] inline void Worker::NoteSingleBet(std::uint16_t count, const BetView& bet) {
  // A session whose one batch is one bet is bet mode's: its bet is logged at
  // INFO when the session ends with nothing more (~Worker). A lottery-mode
  // batch that happens to hold one bet says FINISHED, or more, and is not.
  if (count == 1 && !single_bet_ && session_bets_ == 0) {
    single_bet_ = fmt::format("dni: {} | numero: {}", bet.document, bet.number);
  }
  session_bets_ += count;
}

bool Worker::LogStoredBets(std::string_view payload, const Date& today) {
  // Each bet is logged as stored: store it now, while its frame is at hand.
  if (!StorePendingBatches()) return false;
  BetBatchDecoder again(payload);
  (void)again.Start();
  std::string_view row;
  BetView bet;
  while (again.NextRow(row)) {
    if (ParseBetRow(row, today, bet, row_scratch_)) break;  // checked above: cannot fail
    Log(LogLevel::kDebug, "apuesta_almacenada", Outcome::kSuccess, "dni: {} | numero: {}",
        bet.document, bet.number);
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
  if (auto answered = AnswerUntakenBatch(payload, seq, count, received)) return *answered;
  const Date today = Today();
  // Its rows' positions among the agency's stored bets, for its share of
  // the stored digest (wire/row_digest.h); this worker alone appends for
  // the agency, so it knows them without asking the segment.
  const std::uint64_t first = stored_bets_ + pending_bets_;
  std::uint64_t digest = 0;
  BetView bet;
  if (auto refused = PendRows(decoder, seq, count, today, first, bet, digest)) return *refused;
  PendBatch(seq, count, first, digest, received);
  NoteSingleBet(count, bet);
  if (LogEnabled(LogLevel::kDebug)) return LogStoredBets(payload, today);
  return true;
}

void Worker::LogSingleBet() {
  if (!single_bet_ || finished_ || session_bets_ != 1 || session_bets_stored_ != 1) return;
  Log(LogLevel::kInfo, "apuesta_almacenada", Outcome::kSuccess, "{}", *single_bet_);
}

}  // namespace lottery
