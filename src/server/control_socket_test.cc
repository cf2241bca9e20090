#include "server/control_socket.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>

#include <fmt/format.h>

#include "common/test_util.h"

namespace lottery {
namespace {

using testing::ReadFile;
using testing::TempDir;

ControlReply Handle(const ControlRequest& request, const ControlPeer& peer) {
  if (request.command != "status") return ControlReply::Failure("unknown command");
  return ControlReply::Success().Set("uid", peer.uid).Set("round", 1);
}

template <typename Done>
void Pump(ControlEndpoint& endpoint, Done done,
          std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    std::vector<pollfd> fds;
    endpoint.AddPollFds(fds);
    ::poll(fds.data(), fds.size(), 20);
    endpoint.OnPoll(fds, 0, Handle);
  }
}

UniqueFd Connect(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.data(), path.size());
  REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  return fd;
}

bool ReadAvailable(int fd, std::string& into) {
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) into.append(buf, static_cast<std::size_t>(n));
  return n == 0;  // closed
}

// Sends `request` and pumps the endpoint until the reply is whole.
std::string Ask(ControlEndpoint& endpoint, const std::string& request) {
  UniqueFd client = Connect(endpoint.path());
  REQUIRE(::send(client.get(), request.data(), request.size(), 0) ==
          static_cast<ssize_t>(request.size()));
  std::string reply;
  bool closed = false;
  Pump(endpoint, [&] { return (closed = ReadAvailable(client.get(), reply)); });
  CHECK(closed);
  return reply;
}

}  // namespace

TEST_CASE("the control socket is created 0600, answers a request and goes away") {
  TempDir dir;
  const std::string path = dir.File("control.sock");
  {
    auto endpoint = ControlEndpoint::Open(path);
    REQUIRE(endpoint);
    struct stat st {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK(S_ISSOCK(st.st_mode));
    CHECK((st.st_mode & 0777) == 0600);
    CHECK(Ask(*endpoint, "status\n") == fmt::format("ok=1\nuid={}\nround=1\n", ::geteuid()));
    CHECK(Ask(*endpoint, "nonsense\n") == "ok=0\nerror=unknown command\n");
  }
  CHECK(::access(path.c_str(), F_OK) != 0);
}

TEST_CASE("a garbage or overlong request is answered ok=0, and so is a line cut by EOF") {
  TempDir dir;
  auto endpoint = ControlEndpoint::Open(dir.File("c.sock"));
  REQUIRE(endpoint);
  CHECK(Ask(*endpoint, "\x16\x03\x01 hello\n").starts_with("ok=0\nerror=bad request: "));
  CHECK(
      Ask(*endpoint, std::string(600, 'a')).starts_with("ok=0\nerror=bad request: request longer"));
  UniqueFd client = Connect(endpoint->path());
  REQUIRE(::send(client.get(), "status", 6, 0) == 6);
  ::shutdown(client.get(), SHUT_WR);
  std::string reply;
  Pump(*endpoint, [&] { return ReadAvailable(client.get(), reply); });
  CHECK(reply == "ok=0\nerror=bad request: request without a line end\n");
}

TEST_CASE("a stale socket is replaced; a live one or another kind of file is refused") {
  TempDir dir;
  const std::string path = dir.File("control.sock");
  {
    auto first = ControlEndpoint::Open(path);
    REQUIRE(first);
    auto second = ControlEndpoint::Open(path);
    REQUIRE_FALSE(second);
    CHECK(second.error().kind == ErrorKind::kBusy);
    CHECK(second.error().message.find("another server listens on") != std::string::npos);
    first->Close();  // like a forked worker: the file stays, nobody listens
  }
  REQUIRE(::access(path.c_str(), F_OK) == 0);
  auto replaced = ControlEndpoint::Open(path);
  REQUIRE(replaced);
  CHECK(Ask(*replaced, "status\n").starts_with("ok=1\n"));
  const std::string regular = dir.File("regular");
  { std::ofstream(regular) << "data"; }
  auto refused = ControlEndpoint::Open(regular);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().kind == ErrorKind::kConfig);
  CHECK(ReadFile(regular) == "data");
  CHECK_FALSE(ControlEndpoint::Open(dir.File(std::string(120, 'x'))));
}

TEST_CASE("a silent client does not hold others up and is dropped at its deadline") {
  TempDir dir;
  auto endpoint = ControlEndpoint::Open(dir.File("c.sock"));
  REQUIRE(endpoint);
  UniqueFd silent = Connect(endpoint->path());
  Pump(
      *endpoint, [] { return false; }, std::chrono::milliseconds(100));
  CHECK(endpoint->NextDeadline().has_value());
  CHECK(Ask(*endpoint, "status\n").starts_with("ok=1\n"));
  std::string nothing;
  bool closed = false;
  Pump(
      *endpoint, [&] { return (closed = ReadAvailable(silent.get(), nothing)); },
      ControlEndpoint::kDeadline * 3);
  CHECK(closed);
  CHECK(nothing.empty());
  CHECK_FALSE(endpoint->NextDeadline().has_value());
}

TEST_CASE("beyond kMaxClients at once, a new client gets a busy refusal") {
  TempDir dir;
  auto endpoint = ControlEndpoint::Open(dir.File("c.sock"));
  REQUIRE(endpoint);
  std::vector<UniqueFd> held;
  for (std::size_t i = 0; i < ControlEndpoint::kMaxClients; ++i)
    held.push_back(Connect(endpoint->path()));
  Pump(
      *endpoint, [] { return false; }, std::chrono::milliseconds(100));
  UniqueFd extra = Connect(endpoint->path());
  std::string reply;
  Pump(*endpoint, [&] { return ReadAvailable(extra.get(), reply); });
  CHECK(reply.starts_with("ok=0\nerror=busy: "));
}

TEST_CASE("only the server's uid and root may control it") {
  CHECK(ControlPeerAllowed(1000, 1000));
  CHECK(ControlPeerAllowed(0, 1000));
  CHECK_FALSE(ControlPeerAllowed(65534, 1000));
  CHECK_FALSE(ControlPeerAllowed(65534, 0));
}

}  // namespace lottery
