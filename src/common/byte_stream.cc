#include "common/byte_stream.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace lottery {
namespace {

StreamStep FromErrno(std::string& error, short events) {
  if (errno == EAGAIN || errno == EWOULDBLOCK) return {StreamStep::kWouldBlock, 0, events};
  error = std::strerror(errno);
  return {StreamStep::kError, 0, 0};
}

}  // namespace

WaitResult WaitForEvents(int fd, short events, int cancel_fd,
                         std::optional<std::chrono::steady_clock::time_point> deadline) {
  using Clock = std::chrono::steady_clock;
  while (true) {
    pollfd fds[2] = {{fd, events, 0}, {cancel_fd, POLLIN, 0}};
    int timeout = -1;
    if (deadline) {
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(*deadline - Clock::now()).count();
      timeout = left > 0 ? static_cast<int>(left) : 0;
    }
    int rc = ::poll(fds, cancel_fd >= 0 ? 2 : 1, timeout);
    if (rc < 0) {
      if (errno == EINTR) continue;
      return WaitResult::kError;
    }
    if (cancel_fd >= 0 && (fds[1].revents & POLLIN)) return WaitResult::kCancelled;
    if (fds[0].revents != 0) return WaitResult::kReady;
    if (rc == 0 || (deadline && Clock::now() >= *deadline)) return WaitResult::kTimeout;
  }
}

StreamStep PlainStream::ReadSome(char* buffer, std::size_t length) {
  while (true) {
    ssize_t n = ::recv(fd_, buffer, length, MSG_DONTWAIT);
    if (n > 0) return {StreamStep::kData, static_cast<std::size_t>(n), 0};
    if (n == 0) return {StreamStep::kClosed, 0, 0};
    if (errno != EINTR) return FromErrno(error_, POLLIN);
  }
}

StreamStep PlainStream::WriteSome(const char* buffer, std::size_t length) {
  while (true) {
    ssize_t n = ::send(fd_, buffer, length, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return {StreamStep::kData, static_cast<std::size_t>(n), 0};
    if (errno != EINTR) return FromErrno(error_, POLLOUT);
  }
}

StreamStep ByteStream::WriteSomeOf(std::span<const std::string_view> pieces) {
  for (std::string_view piece : pieces) {
    if (!piece.empty()) return WriteSome(piece.data(), piece.size());
  }
  return {StreamStep::kData, 0, 0};
}

StreamStep PlainStream::WriteSomeOf(std::span<const std::string_view> pieces) {
  constexpr std::size_t kMaxPieces = 64;  // far below IOV_MAX
  iovec iov[kMaxPieces];
  std::size_t count = 0;
  for (std::string_view piece : pieces) {
    if (count == kMaxPieces) break;
    if (piece.empty()) continue;
    iov[count++] = iovec{const_cast<char*>(piece.data()), piece.size()};
  }
  if (count == 0) return {StreamStep::kData, 0, 0};
  msghdr message{};
  message.msg_iov = iov;
  message.msg_iovlen = count;
  while (true) {
    ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return {StreamStep::kData, static_cast<std::size_t>(n), 0};
    if (errno != EINTR) return FromErrno(error_, POLLOUT);
  }
}

}  // namespace lottery
