#include "agency/bet_sender.h"

#include <algorithm>
#include <chrono>

#include <fmt/format.h>

#include "common/log.h"
#include "wire/protocol.h"

namespace lottery {

Step BetSender::Submit(std::uint16_t count) {
  window_.Push(next_seq_++, count);
  unsent_bytes_ += window_.at(window_.size() - 1).frame.size();
  if (unsent_bytes_ < kSendBytes && !window_.full()) return Step::kDone;
  if (Step s = SendPending(); s != Step::kDone) return s;
  if (!window_.full()) return Step::kDone;
  // A full window waits for a group's worth of acks, not one: freeing one
  // slot at a time would send one frame at a time.
  const std::size_t frame = std::max<std::size_t>(1, window_.at(window_.size() - 1).frame.size());
  const std::size_t group = std::clamp<std::size_t>(
      kSendBytes / frame, 1, std::max<std::size_t>(1, window_.capacity() / 2));
  while (window_.size() > window_.capacity() - group) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step BetSender::Flush() {
  // The batches not sent are the newest ones (a reconnect or a renumbering
  // marks them all).
  if (window_.empty() || window_.at(window_.size() - 1).sent) return Step::kDone;
  return SendPending();
}

Step BetSender::Drain() {
  while (!window_.empty()) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step BetSender::Connect() {
  if (!link_.connected()) {
    if (Step s = link_.Ensure(LinkHello::kSend); s != Step::kDone) return s;
    window_.MarkAllUnsent();
  }
  if (checked_session_ == link_.sessions()) return Step::kDone;
  checked_session_ = link_.sessions();
  // The batches in flight that the server holds were stored before the
  // connection broke: by this process, under these very numbers.
  const Welcome& held = link_.welcome();
  while (!window_.empty() && window_.oldest().seq <= held.last_seq && !window_.oldest().sent) {
    link_.MarkAcked(window_.oldest().seq);
    ++batches_acked_;
    bets_acked_ += window_.oldest().count;
    window_.PopOldest();
  }
  if (held.bets_stored == bets_before_ + bets_acked_) return Step::kDone;
  Log(LogLevel::kError, "resume", Outcome::kFail,
      "client_id: {} | bets_stored: {} | expected: {} | last_seq: {} | error: the server holds "
      "other bets of agency {} than this process sent ({} before it started, {} since); "
      "another process sends for this agency? stopping rather than send a bet twice",
      config_.id, held.bets_stored, bets_before_ + bets_acked_, held.last_seq, config_.id,
      bets_before_, bets_acked_);
  link_.Close("the server holds bets this process did not send");
  return Step::kIdTaken;
}

Step BetSender::SendPending() {
  while (true) {
    if (Step s = Connect(); s != Step::kDone) return s;
    // The unsent batches (the newest ones), in order, in one gathered write.
    std::size_t first = 0;
    while (first < window_.size() && window_.at(first).sent) ++first;
    gather_.clear();
    for (std::size_t i = first; i < window_.size(); ++i) gather_.push_back(window_.at(i).frame);
    const Step s = link_.SendAll(gather_);
    if (s != Step::kDone && s != Step::kRetry) return s;
    const auto now = BatchWindow::Clock::now();
    for (std::size_t i = first; i < window_.size(); ++i) {
      window_.at(i).sent = true;
      window_.at(i).sent_at = now;
    }
    unsent_bytes_ = 0;
    if (s == Step::kDone) return Step::kDone;  // else reconnect, then all of them again
  }
}

Step BetSender::AwaitOldest() {
  while (true) {
    if (Step s = SendPending(); s != Step::kDone) return s;
    if (window_.empty()) return Step::kDone;  // the server held them all
    Frame reply;
    Step s = link_.Receive(reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) continue;
    if (s != Step::kDone) return s;
    BatchWindow::Batch& b = window_.oldest();
    if (reply.type == static_cast<std::uint8_t>(MessageType::kAck)) {
      auto ack = DecodeAck(reply.payload);
      if (!ack || ack->seq != b.seq) {
        link_.Drop("ACK does not match the oldest batch in flight");
        return Step::kFatal;
      }
      ack_latency_.Record(BatchWindow::Clock::now() - b.sent_at);
      link_.MarkProgress();
      link_.MarkAcked(b.seq);
      Log(LogLevel::kDebug, "batch_acked", Outcome::kSuccess, "client_id: {} | seq: {} | count: {}",
          config_.id, b.seq, b.count);
      ++batches_acked_;
      bets_acked_ += b.count;
      window_.PopOldest();
      if (on_ack_) on_ack_();
      return Step::kDone;
    }
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "apuesta_enviada");
      if (e == Step::kRejected) return SkipRejected();
      if (e == Step::kRetry) {
        if (!link_.Sleep(kRetryPause)) return Step::kCancelled;
        continue;
      }
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to BETS", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

Step BetSender::SkipRejected() {
  const std::uint64_t freed = window_.oldest().seq;
  bets_rejected_ += window_.oldest().count;
  window_.PopOldest();
  // Each batch sent behind the refused one gets its own reply: SEQUENCE_GAP
  // (send it again, renumbered) or, from a server that validates first,
  // INVALID_BET (refused too). Anything else: reconnect and resynchronise.
  for (std::size_t i = 0; i < window_.size() && link_.connected(); ++i) {
    BatchWindow::Batch& b = window_.at(i);
    if (!b.sent) break;
    Frame reply;
    Step s = link_.Receive(reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) break;
    if (s != Step::kDone) return s;
    auto e =
        reply.type == static_cast<std::uint8_t>(MessageType::kError)
            ? DecodeError(reply.payload)
            : Result<ErrorReply>(std::unexpected(Error{ErrorKind::kProtocol, "not an ERROR", 0}));
    if (e && e->code == ErrorCode::kSequenceGap) continue;
    if (e && e->code == ErrorCode::kInvalidBet) {
      Log(LogLevel::kWarning, "apuesta_enviada", Outcome::kFail,
          "client_id: {} | code: {} | error: {}", config_.id, ErrorCodeName(e->code),
          LogSafe(e->message));
      b.refused = true;
      bets_rejected_ += b.count;
      continue;
    }
    link_.Drop(fmt::format("unexpected {} for a batch sent behind a refused one",
                           MessageTypeName(reply.type)));
    break;
  }
  window_.RemoveRefused();
  // The refused batches' numbers are not used: the others move down.
  window_.Renumber(freed);
  next_seq_ = freed + window_.size();
  return Step::kDone;
}

}  // namespace lottery
