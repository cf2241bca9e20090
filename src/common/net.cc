#include "common/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <charconv>
#include <cstring>
#include <memory>

#include <fmt/format.h>

namespace lottery {

Result<HostPort> ParseHostPort(std::string_view text) {
  std::string_view host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return Fail(ErrorKind::kConfig, fmt::format("'{}' is not HOST:PORT", text));
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos)
      return Fail(ErrorKind::kConfig, fmt::format("'{}' is not HOST:PORT", text));
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (host.empty() || ec != std::errc() || end != port.data() + port.size() || value == 0 ||
      value > 65535) {
    return Fail(ErrorKind::kConfig,
                fmt::format("'{}' is not HOST:PORT with a port 1..65535", text));
  }
  return HostPort{std::string(host), static_cast<std::uint16_t>(value)};
}

namespace {

using AddressList = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

// The addresses a server binds for `address` ("" is every IPv4 interface),
// as both the start-up check and ListenTcp resolve them.
Result<AddressList> ResolveListenAddress(const std::string& address, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* list = nullptr;
  const std::string service = std::to_string(port);
  const char* node = address.empty() ? nullptr : address.c_str();
  if (int rc = ::getaddrinfo(node, service.c_str(), &hints, &list); rc != 0) {
    return Fail(ErrorKind::kConfig,
                fmt::format("cannot resolve listen address '{}': {}", address, gai_strerror(rc)));
  }
  return AddressList(list, &::freeaddrinfo);
}

}  // namespace

Status CheckListenAddress(const std::string& address) {
  auto resolved = ResolveListenAddress(address, 0);
  if (!resolved) return std::unexpected(resolved.error());
  return Ok();
}

Result<UniqueFd> ListenTcp(const std::string& address, std::uint16_t port, int backlog) {
  auto resolved = ResolveListenAddress(address, port);
  if (!resolved) return std::unexpected(resolved.error());
  Error last{ErrorKind::kConfig, "no address to listen on", 0};
  for (addrinfo* ai = resolved->get(); ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = FailErrno("socket").error();
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0) {
      last = FailErrno(fmt::format("bind {}:{}", address, port)).error();
      continue;
    }
    if (::listen(fd.get(), backlog) != 0) {
      last = FailErrno(fmt::format("listen {}:{}", address, port)).error();
      continue;
    }
    return fd;
  }
  return std::unexpected(last);
}

Result<std::uint16_t> LocalPort(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) {
    return FailErrno("getsockname");
  }
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return Fail(ErrorKind::kIo, "getsockname: not an IP socket");
}

namespace {

// Connects one address, giving up after `timeout`.
Status ConnectOne(int fd, const sockaddr* addr, socklen_t len, std::chrono::milliseconds timeout) {
  int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
  if (::connect(fd, addr, len) != 0) {
    if (errno != EINPROGRESS) return FailErrno("connect");
    pollfd p{fd, POLLOUT, 0};
    int rc;
    do {
      rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
    } while (rc < 0 && errno == EINTR);
    if (rc == 0) return std::unexpected(Error{ErrorKind::kIo, "connect: timed out", ETIMEDOUT});
    if (rc < 0) return FailErrno("poll");
    int err = 0;
    socklen_t elen = sizeof err;
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen);
    if (err != 0) return FailErrno("connect", err);
  }
  ::fcntl(fd, F_SETFL, flags);
  return Ok();
}

}  // namespace

Result<UniqueFd> ConnectTcp(const HostPort& endpoint, std::chrono::milliseconds timeout) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* list = nullptr;
  std::string service = std::to_string(endpoint.port);
  if (int rc = ::getaddrinfo(endpoint.host.c_str(), service.c_str(), &hints, &list); rc != 0) {
    return Fail(ErrorKind::kIo,
                fmt::format("cannot resolve '{}': {}", endpoint.host, gai_strerror(rc)));
  }
  Error last{ErrorKind::kIo, "no address", 0};
  for (addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(::socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd) {
      last = FailErrno("socket").error();
      continue;
    }
    if (auto s = ConnectOne(fd.get(), ai->ai_addr, ai->ai_addrlen, timeout); !s) {
      last = s.error();
      continue;
    }
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    EnableKeepAlive(fd.get());
    ::freeaddrinfo(list);
    return fd;
  }
  ::freeaddrinfo(list);
  return std::unexpected(last);
}

std::string PeerAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  if (::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "?";
  char buf[INET6_ADDRSTRLEN] = "?";
  if (ss.ss_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, buf, sizeof buf);
  } else if (ss.ss_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, buf, sizeof buf);
  }
  return buf;
}

void EnableKeepAlive(int fd) {
  int on = 1, idle = 60, interval = 10, count = 3;
  ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

}  // namespace lottery
