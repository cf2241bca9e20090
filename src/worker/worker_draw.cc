#include "worker/worker_session.h"

#include <poll.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/log.h"

namespace lottery {
namespace {

std::int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

bool Worker::HandleFinished() {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "FINISHED before HELLO");
  std::uint64_t stored = 0;
  auto marked = barrier_.MarkFinished(agency_);
  if (!marked) return SendError(ErrorCode::kStorageFailed, marked.error().message);
  if (!*marked) return SendBettingClosed();
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    stored = s.slots[agency_].bets_stored;
  }
  finished_ = true;  // logged agency_finished (DrawBarrier::MarkFinished)
  out_.clear();
  EncodeFinishedAck(out_, stored);
  if (!Send(out_)) return false;
  // The agency that completes the barrier runs the draw right away.
  if (auto ran = barrier_.DrawIfDue(); !ran) {
    Log(LogLevel::kError, "sorteo", Outcome::kFail, "error: {}", ran.error().message);
  }
  return true;
}

bool Worker::HandleWinnersQuery() {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "WINNERS_QUERY before HELLO");
  if (!finished_) return SendError(ErrorCode::kOutOfOrder, "WINNERS_QUERY before FINISHED");
  bool peer_gone = false;
  CRASH_POINT("waiting_for_draw");
  auto waited = barrier_.WaitForDraw([this, &peer_gone] {
    // An agency that hung up must not keep its slot until the draw.
    pollfd p{conn_.get(), POLLRDHUP, 0};
    peer_gone = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    return peer_gone || ShutdownRequested();
  });
  if (peer_gone) {
    Log(LogLevel::kInfo, "connection_closed", Outcome::kSuccess,
        "ip: {} | agency: {} | detail: agency left while waiting for the draw", peer_, agency_);
    return false;
  }
  if (waited == DrawBarrier::WaitResult::kCancelled) {
    if (replaced_) {
      SendStopReason();
    } else {
      SendError(ErrorCode::kDrawCancelled, "the server is shutting down before the draw");
    }
    stopping_ = true;
    return false;
  }
  if (waited == DrawBarrier::WaitResult::kFailed) {
    SendError(ErrorCode::kStorageFailed, "the draw failed; see the server log");
    return false;
  }
  auto winners = barrier_.Winners(agency_);
  if (!winners) return SendError(ErrorCode::kStorageFailed, winners.error().message);
  std::vector<std::string_view> views(winners->begin(), winners->end());
  out_.clear();
  EncodeWinnersFrames(out_, views);
  if (!Send(out_)) return false;
  std::int64_t all_finished = 0;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    all_finished = s.all_finished_ns;
  }
  Log(LogLevel::kInfo, "winners_sent", Outcome::kSuccess,
      "agency: {} | cant_ganadores: {} | draw_latency_ms: {:.1f}", agency_, views.size(),
      all_finished > 0 ? static_cast<double>(MonotonicNanos() - all_finished) / 1e6 : 0.0);
  return true;
}

}  // namespace lottery
