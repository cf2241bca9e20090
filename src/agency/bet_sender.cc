#include "agency/bet_sender.h"

#include <chrono>

#include <fmt/format.h>

#include "common/log.h"
#include "wire/protocol.h"

namespace lottery {

Step BetSender::Submit(std::uint16_t count) {
  window_.Push(next_seq_++, count);
  if (Step s = SendPending(); s != Step::kDone) return s;
  while (window_.full()) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step BetSender::Drain() {
  while (!window_.empty()) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step BetSender::SendPending() {
  while (true) {
    if (!link_.connected()) {
      if (Step s = link_.Ensure(true); s != Step::kDone) return s;
      window_.MarkAllUnsent();
    }
    // What the server said it held when this connection began was stored
    // earlier (before a reconnect, or by an earlier run of this agency).
    const std::uint64_t held = link_.welcome().last_seq;
    while (!window_.empty() && window_.oldest().seq <= held && !window_.oldest().sent) {
      link_.MarkAcked(window_.oldest().seq);
      ++batches_acked_;
      bets_acked_ += window_.oldest().count;
      window_.PopOldest();
    }
    bool broke = false;
    for (std::size_t i = 0; i < window_.size() && !broke; ++i) {
      BatchWindow::Batch& b = window_.at(i);
      if (b.sent) continue;
      Step s = link_.Send(b.frame);
      if (s == Step::kRetry) broke = true;
      else if (s != Step::kDone) return s;
      b.sent = true;
      b.sent_at = BatchWindow::Clock::now();
    }
    if (!broke) return Step::kDone;
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
        if (!link_.Sleep(Millis(200))) return Step::kCancelled;
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
    auto e = reply.type == static_cast<std::uint8_t>(MessageType::kError)
                 ? DecodeError(reply.payload)
                 : Result<ErrorReply>(std::unexpected(Error{ErrorKind::kProtocol, "not an ERROR", 0}));
    if (e && e->code == ErrorCode::kSequenceGap) continue;
    if (e && e->code == ErrorCode::kInvalidBet) {
      Log(LogLevel::kWarning, "apuesta_enviada", Outcome::kFail, "client_id: {} | code: {} | error: {}",
          config_.id, ErrorCodeName(e->code), LogSafe(e->message));
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
