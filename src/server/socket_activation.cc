#include "server/socket_activation.h"

#include <fcntl.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdlib>

#include <fmt/format.h>

namespace lottery {
namespace {

std::optional<long long> ParseNumber(const std::string& text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

Result<std::optional<ActivatedSocket>> TakeActivatedSocket(
    const std::map<std::string, std::string>& env, pid_t self) {
  auto pid_it = env.find("LISTEN_PID");
  auto fds_it = env.find("LISTEN_FDS");
  if (pid_it == env.end() || fds_it == env.end()) return std::nullopt;
  auto pid = ParseNumber(pid_it->second);
  if (!pid)
    return Fail(ErrorKind::kConfig,
                fmt::format("LISTEN_PID='{}' is not a process id", pid_it->second));
  if (*pid != self) return std::nullopt;  // meant for another process
  auto count = ParseNumber(fds_it->second);
  if (!count || *count < 0 || *count > 1024) {
    return Fail(ErrorKind::kConfig,
                fmt::format("LISTEN_FDS='{}' is not a descriptor count", fds_it->second));
  }
  if (*count == 0) return std::nullopt;

  const int fd = kListenFdsStart;
  if (::fcntl(fd, F_GETFD) < 0) return FailErrno("socket activation: descriptor 3");
  UniqueFd listener(fd);
  int type = 0;
  int listening = 0;
  sockaddr_storage addr{};
  socklen_t type_len = sizeof type;
  socklen_t listening_len = sizeof listening;
  socklen_t addr_len = sizeof addr;
  if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &type_len) != 0 ||
      ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &listening_len) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &addr_len) != 0) {
    listener.Release();  // not ours to close when it is not even a socket
    return FailErrno("socket activation: descriptor 3 is not a socket");
  }
  if (type != SOCK_STREAM || listening == 0 ||
      (addr.ss_family != AF_INET && addr.ss_family != AF_INET6)) {
    return Fail(ErrorKind::kConfig,
                "socket activation: descriptor 3 is not a listening TCP socket "
                "(ListenStream= with an IP port)");
  }
  // The manager passes descriptors without close-on-exec.
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);
  ActivatedSocket activated{std::move(listener), static_cast<int>(*count - 1)};
  for (int extra = fd + 1; extra < fd + *count; ++extra) ::close(extra);
  return std::optional<ActivatedSocket>(std::move(activated));
}

void UnsetActivationEnvironment() {
  ::unsetenv("LISTEN_PID");
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_FDNAMES");
}

}  // namespace lottery
