#include "server/notify_socket.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>

#include <fmt/format.h>

#include "common/unique_fd.h"

namespace lottery {

Status SendNotifyDatagram(std::string_view socket_address, std::string_view message) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket_address.size() < 2 || (socket_address[0] != '/' && socket_address[0] != '@')) {
    return Fail(
        ErrorKind::kConfig,
        fmt::format("NOTIFY_SOCKET '{}' is not an AF_UNIX path or @abstract name", socket_address));
  }
  if (socket_address.size() > sizeof addr.sun_path) {
    return Fail(ErrorKind::kConfig, fmt::format("NOTIFY_SOCKET '{}' is longer than {} bytes",
                                                socket_address, sizeof addr.sun_path));
  }
  std::memcpy(addr.sun_path, socket_address.data(), socket_address.size());
  // An abstract address starts with a NUL byte and is not NUL-terminated:
  // its length is part of the name.
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
  socklen_t length =
      static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + socket_address.size());

  UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("notify socket");
  ssize_t sent;
  do {
    sent = ::sendto(fd.get(), message.data(), message.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), length);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return FailErrno(fmt::format("notify {}", socket_address));
  if (static_cast<std::size_t>(sent) != message.size())
    return Fail(ErrorKind::kIo, "notify: short datagram");
  return Ok();
}

}  // namespace lottery
