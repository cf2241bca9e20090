#include "wire/frame_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lottery {
namespace {

IoStatus Wait(ByteStream& stream, short events, int cancel_fd,
              std::optional<Clock::time_point> deadline) {
  switch (WaitForEvents(stream.fd(), events, cancel_fd, deadline)) {
    case WaitResult::kReady: return IoStatus::kOk;
    case WaitResult::kTimeout: return IoStatus::kTimeout;
    case WaitResult::kCancelled: return IoStatus::kCancelled;
    case WaitResult::kError: return IoStatus::kError;
  }
  return IoStatus::kError;
}

}  // namespace

const char* IoStatusName(IoStatus status) {
  switch (status) {
    case IoStatus::kOk: return "ok";
    case IoStatus::kClosed: return "closed";
    case IoStatus::kTruncated: return "truncated";
    case IoStatus::kTooLarge: return "too_large";
    case IoStatus::kTimeout: return "timeout";
    case IoStatus::kCancelled: return "cancelled";
    case IoStatus::kError: return "error";
  }
  return "error";
}

FrameReader::FrameReader(ByteStream& stream, int cancel_fd, std::size_t max_frame)
    : stream_(stream), cancel_fd_(cancel_fd), max_frame_(max_frame) {
  // Room for several full frames so a pipelining peer needs few reads.
  buffer_.resize(std::max<std::size_t>(2 * max_frame_ + 4096, kStartBuffer));
}

IoStatus FrameReader::Fill(std::size_t want, std::optional<Clock::time_point> deadline) {
  if (end_ - begin_ >= want) return IoStatus::kOk;
  if (begin_ + want > buffer_.size()) {
    // Slide unconsumed bytes to the front; want <= max_frame_ always fits.
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  while (end_ - begin_ < want) {
    // Try first, wait only when nothing is there: a busy stream costs one
    // system call per read instead of two.
    StreamStep step = stream_.ReadSome(buffer_.data() + end_, buffer_.size() - end_);
    if (step.kind == StreamStep::kWouldBlock) {
      if (IoStatus w = Wait(stream_, step.events, cancel_fd_, deadline); w != IoStatus::kOk) {
        return w;
      }
      continue;
    }
    if (step.kind == StreamStep::kError) {
      error_ = stream_.error();
      return IoStatus::kError;
    }
    // Unconsumed bytes always belong to the frame being read.
    if (step.kind == StreamStep::kClosed) {
      return end_ == begin_ ? IoStatus::kClosed : IoStatus::kTruncated;
    }
    end_ += step.bytes;
    // The read took all the room there was: the peer may have more waiting.
    if (end_ == buffer_.size() && buffer_.size() < kMaxBuffer) {
      buffer_.resize(std::min(2 * buffer_.size(), kMaxBuffer));
    }
  }
  return IoStatus::kOk;
}

bool FrameReader::HasWholeFrame() const {
  if (end_ - begin_ < kFrameHeaderSize) return false;
  FrameHeader h = DecodeFrameHeader(std::string_view(buffer_).substr(begin_, end_ - begin_));
  return h.length <= max_frame_ - kFrameHeaderSize && end_ - begin_ >= kFrameHeaderSize + h.length;
}

IoStatus FrameReader::Read(Frame& frame, std::optional<Millis> idle, Millis stall) {
  if (begin_ == end_) begin_ = end_ = 0;
  // Wait for the first byte with the idle bound; from then on the whole
  // frame must arrive within `stall` (a deadline, not a per-byte timeout: a
  // peer that trickles one byte at a time does not hold a worker for ever).
  std::optional<Clock::time_point> idle_deadline;
  if (idle) idle_deadline = Clock::now() + *idle;
  if (IoStatus s = Fill(1, idle_deadline); s != IoStatus::kOk) return s;
  const Clock::time_point frame_deadline = Clock::now() + stall;
  if (IoStatus s = Fill(kFrameHeaderSize, frame_deadline); s != IoStatus::kOk) return s;
  header_ = DecodeFrameHeader(std::string_view(buffer_).substr(begin_, end_ - begin_));
  frame.type = header_.type;
  if (header_.length > max_frame_ - kFrameHeaderSize) return IoStatus::kTooLarge;
  if (IoStatus s = Fill(kFrameHeaderSize + header_.length, frame_deadline); s != IoStatus::kOk) {
    return s;
  }
  frame.payload = std::string_view(buffer_.data() + begin_ + kFrameHeaderSize, header_.length);
  begin_ += kFrameHeaderSize + header_.length;
  return IoStatus::kOk;
}

IoStatus WriteAll(ByteStream& stream, std::string_view bytes, int cancel_fd, Millis stall) {
  while (!bytes.empty()) {
    StreamStep step = stream.WriteSome(bytes.data(), bytes.size());
    if (step.kind == StreamStep::kData) {
      bytes.remove_prefix(step.bytes);
      continue;
    }
    if (step.kind != StreamStep::kWouldBlock) return IoStatus::kError;
    IoStatus w = Wait(stream, step.events, cancel_fd, Clock::now() + stall);
    if (w != IoStatus::kOk) return w;
  }
  return IoStatus::kOk;
}

IoStatus WriteAll(ByteStream& stream, std::span<std::string_view> pieces, int cancel_fd,
                  Millis stall) {
  while (!pieces.empty() && pieces.front().empty()) pieces = pieces.subspan(1);
  while (!pieces.empty()) {
    StreamStep step = stream.WriteSomeOf(pieces);
    if (step.kind == StreamStep::kData) {
      std::size_t moved = step.bytes;
      while (!pieces.empty() && moved >= pieces.front().size()) {
        moved -= pieces.front().size();
        pieces.front() = {};
        pieces = pieces.subspan(1);
      }
      if (!pieces.empty()) pieces.front().remove_prefix(moved);
      continue;
    }
    if (step.kind != StreamStep::kWouldBlock) return IoStatus::kError;
    IoStatus w = Wait(stream, step.events, cancel_fd, Clock::now() + stall);
    if (w != IoStatus::kOk) return w;
  }
  return IoStatus::kOk;
}

}  // namespace lottery
