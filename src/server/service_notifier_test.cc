#include "server/service_notifier.h"

#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cstddef>
#include <cstring>
#include <optional>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "server/notify_socket.h"

namespace lottery {
namespace {

// A service manager's end: an AF_UNIX datagram socket bound to `address`
// (a path, or "@name" for the abstract namespace).
class FakeManager {
 public:
  explicit FakeManager(std::string address) : address_(std::move(address)) {
    fd_.Reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd_.valid());
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, address_.data(), address_.size());
    if (address_[0] == '@') addr.sun_path[0] = '\0';
    socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + address_.size());
    REQUIRE(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&addr), len) == 0);
  }
  const std::string& address() const { return address_; }

  // The next datagram, or nothing within `timeout_ms`.
  std::optional<std::string> Receive(int timeout_ms = 2000) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, timeout_ms) <= 0) return std::nullopt;
    char buf[4096];
    ssize_t n = ::recv(fd_.get(), buf, sizeof buf, 0);
    if (n < 0) return std::nullopt;
    return std::string(buf, static_cast<std::size_t>(n));
  }

 private:
  std::string address_;
  UniqueFd fd_;
};

// Points both the real environment (libsystemd reads it) and the map at `socket`.
std::map<std::string, std::string> NotifyEnv(const std::string& socket) {
  ::setenv("NOTIFY_SOCKET", socket.c_str(), 1);
  return {{"NOTIFY_SOCKET", socket}};
}

TEST_CASE("every backend sends the documented messages") {
  testing::TempDir dir;
  for (NotifyBackend backend : AvailableNotifyBackends()) {
    for (std::string address :
         {dir.File(fmt::format("notify-{}", NotifyBackendName(backend))),
          fmt::format("@lottery-test-{}-{}", ::getpid(), NotifyBackendName(backend))}) {
      CAPTURE(NotifyBackendName(backend));
      CAPTURE(address);
      FakeManager manager(address);
      auto notifier = ServiceNotifier::FromEnvironment(NotifyEnv(address), ::getpid(), backend);
      CHECK(notifier.enabled());
      CHECK(notifier.backend() == backend);
      REQUIRE(notifier.Ready("listening on 127.0.0.1:1"));
      CHECK(manager.Receive() == "READY=1\nSTATUS=listening on 127.0.0.1:1");
      REQUIRE(notifier.SetStatus("two\nlines"));
      CHECK(manager.Receive() == "STATUS=two lines");
      REQUIRE(notifier.Reloading("reloading"));
      auto reloading = manager.Receive();
      REQUIRE(reloading);
      CHECK(reloading->starts_with("RELOADING=1\nMONOTONIC_USEC="));
      CHECK(reloading->ends_with("\nSTATUS=reloading"));
      REQUIRE(notifier.Stopping("bye"));
      CHECK(manager.Receive() == "STOPPING=1\nSTATUS=bye");
      REQUIRE(notifier.WatchdogPing());
      CHECK(manager.Receive() == "WATCHDOG=1");
    }
  }
  ::unsetenv("NOTIFY_SOCKET");
}

TEST_CASE("without NOTIFY_SOCKET nothing is sent and nothing fails") {
  ::unsetenv("NOTIFY_SOCKET");
  for (NotifyBackend backend : AvailableNotifyBackends()) {
    auto notifier = ServiceNotifier::FromEnvironment({}, ::getpid(), backend);
    CHECK_FALSE(notifier.enabled());
    CHECK(notifier.Ready("x"));
    CHECK(notifier.WatchdogPing());
    CHECK_FALSE(notifier.watchdog_interval());
  }
}

TEST_CASE("a manager that is gone is an error, not a crash") {
  testing::TempDir dir;
  std::string address = dir.File("nobody");
  for (NotifyBackend backend : AvailableNotifyBackends()) {
    auto notifier = ServiceNotifier::FromEnvironment(NotifyEnv(address), ::getpid(), backend);
    auto sent = notifier.Ready("x");
    CHECK_FALSE(sent);
  }
  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(SendNotifyDatagram("relative/path", "READY=1"));
  CHECK_FALSE(SendNotifyDatagram("", "READY=1"));
  CHECK_FALSE(SendNotifyDatagram("@", "READY=1"));
  CHECK_FALSE(SendNotifyDatagram("/" + std::string(200, 'x'), "READY=1"));
}

TEST_CASE("the watchdog interval comes from WATCHDOG_USEC for this process only") {
  using std::chrono::microseconds;
  const std::string pid = std::to_string(::getpid());
  auto with = [&](std::map<std::string, std::string> env) {
    env["NOTIFY_SOCKET"] = "/run/none";
    return ServiceNotifier::FromEnvironment(env, ::getpid(), NotifyBackend::kBuiltin)
        .watchdog_interval();
  };
  CHECK(with({{"WATCHDOG_USEC", "500000"}}) == microseconds(500000));
  CHECK(with({{"WATCHDOG_USEC", "500000"}, {"WATCHDOG_PID", pid}}) == microseconds(500000));
  CHECK_FALSE(with({{"WATCHDOG_USEC", "500000"}, {"WATCHDOG_PID", "1"}}));
  CHECK_FALSE(with({{"WATCHDOG_USEC", "500000"}, {"WATCHDOG_PID", "x"}}));
  CHECK_FALSE(with({{"WATCHDOG_USEC", "0"}}));
  CHECK_FALSE(with({{"WATCHDOG_USEC", "-5"}}));
  CHECK_FALSE(with({{"WATCHDOG_USEC", "soon"}}));
  CHECK_FALSE(with({}));
  // No socket to ping: no watchdog either.
  CHECK_FALSE(ServiceNotifier::FromEnvironment({{"WATCHDOG_USEC", "500000"}}, ::getpid(),
                                               NotifyBackend::kBuiltin)
                  .watchdog_interval());
}

}  // namespace
}  // namespace lottery
