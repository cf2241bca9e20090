// TCP endpoints: parsing "HOST:PORT", listening and connecting. Every socket
// comes back as a UniqueFd the caller owns, with close-on-exec set.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

struct HostPort {
  std::string host;
  std::uint16_t port = 0;
};

// "127.0.0.1:12345", "server:12345", "[::1]:12345".
Result<HostPort> ParseHostPort(std::string_view text);

// Whether `address` names something this host can listen on (an IP address
// or a host name that resolves here), as ListenTcp resolves it. "" is every
// IPv4 interface. Fails with kConfig naming the address.
Status CheckListenAddress(const std::string& address);

// Binds and listens on address:port (address "" or "0.0.0.0" = every IPv4
// interface, "::" = every interface). SO_REUSEADDR is set.
Result<UniqueFd> ListenTcp(const std::string& address, std::uint16_t port, int backlog);

// The port a bound socket listens on (useful when binding port 0).
Result<std::uint16_t> LocalPort(int fd);

// Resolves host and connects, trying each address once. Blocking connect with
// a timeout; the returned socket is blocking with TCP_NODELAY set.
Result<UniqueFd> ConnectTcp(const HostPort& endpoint, std::chrono::milliseconds timeout);

// TCP keepalive on a connected socket: the kernel probes a peer that has been
// silent for 60 s every 10 s and gives up after 3 unanswered probes, so a
// peer that vanished (power cut, cable pulled) does not hold the connection
// for ever. Best effort: a socket that refuses it keeps working without it.
void EnableKeepAlive(int fd);

// The peer's IP address as text, or "?" when unknown.
std::string PeerAddress(int fd);

}  // namespace lottery
