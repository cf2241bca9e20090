#include "wire/frame_io.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace lottery {
namespace {

// Waits until `fd` is ready for `events` or the cancel descriptor fires.
IoStatus WaitFor(int fd, short events, int cancel_fd, std::optional<Millis> wait) {
  using Clock = std::chrono::steady_clock;
  auto deadline = wait ? std::optional(Clock::now() + *wait) : std::nullopt;
  while (true) {
    pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int timeout = -1;
    if (deadline) {
      auto left = std::chrono::duration_cast<Millis>(*deadline - Clock::now()).count();
      timeout = left > 0 ? static_cast<int>(left) : 0;
    }
    int rc = ::poll(fds, cancel_fd >= 0 ? 2 : 1, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return IoStatus::kError;
    }
    if (cancel_fd >= 0 && (fds[1].revents & POLLIN)) return IoStatus::kCancelled;
    if (fds[0].revents != 0) return IoStatus::kOk;  // ready, hung up or failed: the call tells
    if (rc == 0 || (deadline && Clock::now() >= *deadline)) return IoStatus::kTimeout;
  }
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

FrameReader::FrameReader(int fd, int cancel_fd, std::size_t max_frame)
    : fd_(fd), cancel_fd_(cancel_fd), max_frame_(max_frame) {
  // Room for several full frames so a pipelining peer needs few reads.
  buffer_.resize(std::max<std::size_t>(2 * max_frame_ + 4096, 64 * 1024));
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
    ssize_t n = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        std::optional<Millis> wait;
        if (deadline) {
          wait = std::max(Millis(0), std::chrono::duration_cast<Millis>(*deadline - Clock::now()));
        }
        if (IoStatus w = WaitFor(fd_, POLLIN, cancel_fd_, wait); w != IoStatus::kOk) return w;
        continue;
      }
      error_ = std::strerror(errno);
      return IoStatus::kError;
    }
    // Unconsumed bytes always belong to the frame being read.
    if (n == 0) return end_ == begin_ ? IoStatus::kClosed : IoStatus::kTruncated;
    end_ += static_cast<std::size_t>(n);
  }
  return IoStatus::kOk;
}

bool FrameReader::HasWholeFrame() const {
  if (end_ - begin_ < kFrameHeaderSize) return false;
  FrameHeader h = DecodeFrameHeader(reinterpret_cast<const std::uint8_t*>(buffer_.data() + begin_));
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
  header_ = DecodeFrameHeader(reinterpret_cast<const std::uint8_t*>(buffer_.data() + begin_));
  frame.type = header_.type;
  if (header_.length > max_frame_ - kFrameHeaderSize) return IoStatus::kTooLarge;
  if (IoStatus s = Fill(kFrameHeaderSize + header_.length, frame_deadline); s != IoStatus::kOk) {
    return s;
  }
  frame.payload = std::string_view(buffer_.data() + begin_ + kFrameHeaderSize, header_.length);
  begin_ += kFrameHeaderSize + header_.length;
  return IoStatus::kOk;
}

IoStatus WriteAll(int fd, std::string_view bytes, int cancel_fd, Millis stall) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
      continue;
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return IoStatus::kError;
    IoStatus w = WaitFor(fd, POLLOUT, cancel_fd, stall);
    if (w != IoStatus::kOk) return w;
  }
  return IoStatus::kOk;
}

}  // namespace lottery
