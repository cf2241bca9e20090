#include "ctl/control_client.h"

#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace lottery {
namespace {

Status SetTimeouts(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0 ||
      ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
    return FailErrno("setsockopt SO_RCVTIMEO");
  }
  return Ok();
}

Result<UniqueFd> ConnectUnix(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Fail(ErrorKind::kConfig, fmt::format("control socket path too long: {}", path));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket(AF_UNIX)");
  if (Status set = SetTimeouts(fd.get(), timeout); !set) return std::unexpected(set.error());
  if (::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    return FailErrno(fmt::format("connect to the control socket {}", path));
  }
  return fd;
}

Result<std::string> ReadToEnd(int fd) {
  std::string text;
  char buf[4096];
  while (text.size() <= kMaxControlReplyBytes) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      text.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n == 0) return text;
    if (errno == EINTR) continue;
    // The server closed without reading past our line: what it sent stands.
    if (errno == ECONNRESET && !text.empty()) return text;
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      return FailErrno("no reply from the server in time", ETIMEDOUT);
    }
    return FailErrno("reading the reply");
  }
  return Fail(ErrorKind::kProtocol, "reply too long");
}

}  // namespace

Result<ControlReply> AskServer(const std::string& socket_path, const ControlRequest& request,
                               std::chrono::milliseconds timeout) {
  auto fd = ConnectUnix(socket_path, timeout);
  if (!fd) return std::unexpected(fd.error());
  const std::string line = EncodeControlRequest(request);
  if (::send(fd->get(), line.data(), line.size(), MSG_NOSIGNAL) !=
      static_cast<ssize_t>(line.size())) {
    return FailErrno("sending the request");
  }
  auto text = ReadToEnd(fd->get());
  if (!text) return std::unexpected(text.error());
  return DecodeControlReply(*text);
}

}  // namespace lottery
