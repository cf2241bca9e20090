#include "common/net.h"

#include <doctest/doctest.h>
#include <sys/socket.h>

namespace lottery {
namespace {

TEST_CASE("HOST:PORT parsing") {
  auto a = ParseHostPort("127.0.0.1:12345");
  REQUIRE(a);
  CHECK(a->host == "127.0.0.1");
  CHECK(a->port == 12345);
  auto b = ParseHostPort("server:1");
  REQUIRE(b);
  CHECK(b->host == "server");
  auto c = ParseHostPort("[::1]:65535");
  REQUIRE(c);
  CHECK(c->host == "::1");
  CHECK(c->port == 65535);
  for (const char* bad : {"", "server", ":123", "server:", "server:0", "server:65536", "server:12x",
                          "[::1]12", "[::1:12"}) {
    CHECK_MESSAGE(!ParseHostPort(bad), bad);
  }
}

TEST_CASE("listen on an ephemeral loopback port, connect, and see the peer") {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  REQUIRE(listener);
  auto port = LocalPort(listener->get());
  REQUIRE(port);
  CHECK(*port != 0);
  auto client = ConnectTcp(HostPort{"127.0.0.1", *port}, std::chrono::milliseconds(2000));
  REQUIRE(client);
  UniqueFd accepted(::accept(listener->get(), nullptr, nullptr));
  REQUIRE(accepted.valid());
  CHECK(PeerAddress(accepted.get()) == "127.0.0.1");
  // A second listener on the same port fails with a clear error.
  auto taken = ListenTcp("127.0.0.1", *port, 4);
  REQUIRE_FALSE(taken);
  CHECK(taken.error().message.find("bind") != std::string::npos);
}

TEST_CASE("connecting to a closed port fails fast with the reason") {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  REQUIRE(listener);
  std::uint16_t port = LocalPort(listener->get()).value();
  listener->Reset();
  auto client = ConnectTcp(HostPort{"127.0.0.1", port}, std::chrono::milliseconds(2000));
  REQUIRE_FALSE(client);
  CHECK(client.error().sys_errno == ECONNREFUSED);
  auto unknown = ConnectTcp(HostPort{"no-such-host.invalid", 1}, std::chrono::milliseconds(500));
  CHECK_FALSE(unknown);
}

}  // namespace
}  // namespace lottery
