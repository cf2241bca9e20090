// The worker's frame loop (worker_session.h): Serve reads each frame and
// hands it to one function per job: the reply to a frame that could not be
// read, the dispatch to its handler, the signal check, the acks' flush.
#include <algorithm>
#include <chrono>
#include <cstdint>

#include <fmt/format.h>

#include "common/log.h"
#include "wire/protocol.h"
#include "worker/worker_session.h"

namespace lottery {
namespace {

// Frames served between two looks at the signal descriptor, for a peer
// that never pauses (the reader then never waits on it).
constexpr std::uint64_t kFramesPerSignalCheck = 32;

}  // namespace

int Worker::Serve() {
  while (true) {
    RefreshSettings();
    Frame frame;
    const Millis wait = NextFrameWait();
    IoStatus s = reader_.Read(frame, wait, std::min(stall_, introduced_ ? stall_ : wait));
    if (s != IoStatus::kOk) {
      // Batches validated before a frame that cannot be read are still stored.
      if (StorePendingBatches()) EndOnReadFailure(s, wait);
      return 0;
    }
    first_frame_ = false;
    // A reload may have come while this worker waited for the frame.
    RefreshSettings();
    if (!ServeFrame(frame)) return 0;
  }
}

Millis Worker::NextFrameWait() const {
  // A peer that connects and says nothing must not hold a connection
  // slot, nor one that stops talking between frames. Waiting for the draw
  // happens inside WINNERS_QUERY, not here, so it is not bounded by this.
  // Before HELLO, one deadline from accept whatever arrives (an ECHO does
  // not extend it): strangers cannot hold a place by talking.
  if (introduced_) return idle_;
  return std::max(Millis(0), std::chrono::duration_cast<Millis>(hello_deadline_ - Clock::now()));
}

void Worker::EndOnReadFailure(IoStatus s, Millis wait) {
  switch (s) {
    case IoStatus::kOk: break;
    case IoStatus::kClosed:
      Log(LogLevel::kInfo, "connection_closed", Outcome::kSuccess, "ip: {} | agency: {}", peer_,
          agency_);
      break;
    case IoStatus::kTruncated:
      Log(LogLevel::kWarning, "connection_closed", Outcome::kFail,
          "ip: {} | agency: {} | error: peer closed in the middle of a frame", peer_, agency_);
      break;
    case IoStatus::kTooLarge: ReplyTooLarge(); break;
    case IoStatus::kTimeout: ReplyTimeout(wait); break;
    case IoStatus::kCancelled:
      ShutdownRequested();
      SendStopReason();
      break;
    case IoStatus::kError:
      Log(LogLevel::kWarning, "connection_closed", Outcome::kFail,
          "ip: {} | agency: {} | error: {}", peer_, agency_, reader_.error());
      break;
  }
}

void Worker::ReplyTooLarge() {
  if (!IsKnownMessageType(reader_.header().type)) {
    // Garbage, most likely: say what is wrong with its first byte.
    SendError(ErrorCode::kUnknownType,
              fmt::format("unknown message type 0x{:02x}", reader_.header().type));
    return;
  }
  SendError(ErrorCode::kFrameTooLarge,
            fmt::format("frame of {} bytes exceeds the limit of {}",
                        std::uint64_t{reader_.header().length} + kFrameHeaderSize, kMaxFrameSize));
}

void Worker::ReplyTimeout(Millis wait) {
  if (!introduced_ && (reader_.buffered() == 0 || wait < stall_)) {
    SendError(ErrorCode::kTimeout, fmt::format("{} within {} of connecting (server.hello_timeout)",
                                               first_frame_ ? "no message" : "no HELLO",
                                               FormatDuration(Seconds(hello_))));
    return;
  }
  if (reader_.buffered() == 0) {
    SendError(ErrorCode::kTimeout, fmt::format("no message for {} (server.idle_timeout)",
                                               FormatDuration(Seconds(idle_))));
    return;
  }
  SendError(ErrorCode::kTimeout,
            fmt::format("a frame must arrive whole within server.read_timeout ({}): this one "
                        "did not",
                        FormatDuration(Seconds(stall_))));
}

bool Worker::ServeFrame(const Frame& frame) {
  // Whatever is not a batch sees the batches before it stored.
  if (frame.type != static_cast<std::uint8_t>(MessageType::kBets) && !StorePendingBatches()) {
    return false;
  }
  const bool keep = Dispatch(frame);
  if (StopOnSignal(keep)) return false;
  if (!keep || stopping_) {
    FlushAcks();
    return false;
  }
  return FlushAcksIfDue();
}

bool Worker::Dispatch(const Frame& frame) {
  switch (static_cast<MessageType>(frame.type)) {
    case MessageType::kHello: return HandleHello(frame.payload);
    case MessageType::kBets: return HandleBets(frame.payload);
    case MessageType::kFinished: return HandleFinished();
    case MessageType::kWinnersQuery: return HandleWinnersQuery();
    case MessageType::kEcho: return HandleEcho(frame.payload);
    default:
      if (IsKnownMessageType(frame.type)) {
        return SendError(ErrorCode::kOutOfOrder, fmt::format("{} is sent by the server, not to it",
                                                             MessageTypeName(frame.type)));
      }
      return SendError(ErrorCode::kUnknownType,
                       fmt::format("unknown message type 0x{:02x}", frame.type));
  }
}

bool Worker::StopOnSignal(bool keep) {
  // A peer that never pauses never makes the reader wait on the signal
  // descriptor: look at it now and then.
  if (++frames_served_ % kFramesPerSignalCheck != 0 || !signals_.Pending()) return false;
  ShutdownRequested();
  if (keep) SendStopReason();
  return true;
}

bool Worker::FlushAcksIfDue() {
  // With storage.sync = "always", acks wait while more batches are
  // already here, so that they share one fdatasync (docs/PERFORMANCE.md);
  // the agency's window bounds how long that can be.
  const std::size_t waiting = acks_queued_ + pending_extents_.size();
  if (waiting == 0) return true;
  const bool due = waiting >= append_limits_.batches ||
                   pending_rows_.size() >= append_limits_.row_bytes ||
                   (!reader_.HasWholeFrame() && (!store_->GroupsAcks() || !InputWaiting()));
  return due ? FlushAcks() : true;
}

}  // namespace lottery
