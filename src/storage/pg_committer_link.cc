#include "storage/pg_committer_link.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace lottery {
namespace {

sockaddr_un AbstractAddress(const std::string& address, socklen_t& length) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, address.data(), std::min(address.size(), sizeof addr.sun_path));
  length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address.size());
  return addr;
}

}  // namespace

bool SendAllWithin(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, kCommitterTimeoutMs) <= 0) return false;
      continue;
    }
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

Result<UniqueFd> ListenForCommitters(std::string& address) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return FailErrno("committer socket");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // Only the family: the kernel picks a unique abstract name (autobind).
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(sa_family_t)) != 0) {
    return FailErrno("committer socket bind");
  }
  if (::listen(fd.get(), 1024) != 0) return FailErrno("committer socket listen");
  socklen_t len = sizeof addr;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return FailErrno("committer socket name");
  }
  address.assign(addr.sun_path, len - offsetof(sockaddr_un, sun_path));
  return fd;
}

Result<PgReply> PgCommitterLink::Call(const PgRequest& request) {
  std::string head;
  EncodePgRequestHead(head, request);
  const std::string_view rows = request.kind == PgRequestKind::kStore ? request.rows : "";
  auto reply = CallOnce(head, rows, request.kind);
  if (reply || reply.error().kind != ErrorKind::kIo) return reply;
  return CallOnce(head, rows, request.kind);  // a committer that exited: once more
}

Result<PgReply> PgCommitterLink::CallOnce(std::string_view head, std::string_view rows,
                                          PgRequestKind kind) {
  // A connection per request: whichever committer is free accepts it, so no
  // worker waits behind a busy committer while another one idles.
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  socklen_t len = 0;
  sockaddr_un addr = AbstractAddress(address_, len);
  if (!fd || ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), len) != 0) {
    return FailErrno("connect to the storage committer");
  }
  // The rows go from where the worker gathered them (EncodePgRequestHead).
  if (!SendAllWithin(fd.get(), head) || !SendAllWithin(fd.get(), rows)) {
    return FailErrno("send to the storage committer");
  }
  std::string in;
  char buffer[65536];
  while (true) {
    auto length = PgFrameLength(in);
    if (!length) return std::unexpected(length.error());
    if (*length && in.size() >= **length) break;
    pollfd p{fd.get(), POLLIN, 0};
    int ready = ::poll(&p, 1, kCommitterTimeoutMs);
    ssize_t n = ready > 0 ? ::recv(fd.get(), buffer, sizeof buffer, 0) : -1;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return Fail(ErrorKind::kIo, ready == 0 ? "the storage committer did not answer in time"
                                             : "the storage committer closed the connection");
    }
    in.append(buffer, static_cast<std::size_t>(n));
  }
  return DecodePgReply(kind, in);
}

}  // namespace lottery
