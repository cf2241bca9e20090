#include "server/socket_activation.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "common/net.h"

namespace lottery {
namespace {

// Runs `body` in a forked child whose descriptor 3 is `fd` (or closed when
// fd < 0), so the test process's own descriptors are never touched. Returns
// the child's exit code.
int InChildWithFd3(int fd, const std::function<int()>& body) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    if (fd >= 0) {
      if (fd != 3 && ::dup2(fd, 3) < 0) ::_exit(90);
    } else {
      ::close(3);
    }
    ::_exit(body());
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 99;
}

std::map<std::string, std::string> ActivationEnv(const char* fds = "1") {
  return {{"LISTEN_PID", std::to_string(::getpid())}, {"LISTEN_FDS", fds}};
}

TEST_CASE("no activation variables, or variables for another process: bind as usual") {
  auto none = TakeActivatedSocket({}, ::getpid());
  REQUIRE(none);
  CHECK_FALSE(*none);
  auto other = TakeActivatedSocket({{"LISTEN_PID", "1"}, {"LISTEN_FDS", "1"}}, ::getpid());
  REQUIRE(other);
  CHECK_FALSE(*other);
  auto zero = TakeActivatedSocket(ActivationEnv("0"), ::getpid());
  REQUIRE(zero);
  CHECK_FALSE(*zero);
  CHECK_FALSE(TakeActivatedSocket({{"LISTEN_PID", "me"}, {"LISTEN_FDS", "1"}}, ::getpid()));
  CHECK_FALSE(TakeActivatedSocket(ActivationEnv("many"), ::getpid()));
}

TEST_CASE("a listening TCP socket on descriptor 3 is taken, close-on-exec") {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  REQUIRE(listener);
  auto port = LocalPort(listener->get());
  REQUIRE(port);
  int code = InChildWithFd3(listener->get(), [&] {
    ::fcntl(3, F_SETFD, 0);  // as the manager passes it
    auto taken = TakeActivatedSocket(ActivationEnv(), ::getpid());
    if (!taken || !*taken) return 1;
    if ((*taken)->listener.get() != 3) return 2;
    if ((::fcntl(3, F_GETFD) & FD_CLOEXEC) == 0) return 3;
    auto got = LocalPort(3);
    if (!got || *got != *port) return 4;
    if ((*taken)->extra_descriptors != 0) return 5;
    (*taken)->listener.Release();
    return 0;
  });
  CHECK(code == 0);
}

TEST_CASE("extra activated descriptors are closed") {
  auto listener = ListenTcp("127.0.0.1", 0, 4);
  REQUIRE(listener);
  int code = InChildWithFd3(listener->get(), [&] {
    if (::dup2(3, 4) < 0) return 1;
    auto taken = TakeActivatedSocket(ActivationEnv("2"), ::getpid());
    if (!taken || !*taken) return 2;
    if ((*taken)->extra_descriptors != 1) return 3;
    if (::fcntl(4, F_GETFD) != -1) return 4;  // closed
    (*taken)->listener.Release();
    return 0;
  });
  CHECK(code == 0);
}

TEST_CASE("descriptor 3 that is not a listening TCP socket is refused") {
  int udp = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  int idle_tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int unix_pair[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, unix_pair) == 0);
  int file = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto refused = [] {
    auto taken = TakeActivatedSocket(ActivationEnv(), ::getpid());
    return taken ? 1 : 0;
  };
  CHECK(InChildWithFd3(udp, refused) == 0);
  CHECK(InChildWithFd3(idle_tcp, refused) == 0);
  CHECK(InChildWithFd3(unix_pair[0], refused) == 0);
  CHECK(InChildWithFd3(file, refused) == 0);
  CHECK(InChildWithFd3(-1, refused) == 0);
  for (int fd : {udp, idle_tcp, unix_pair[0], unix_pair[1], file}) ::close(fd);
}

TEST_CASE("the activation variables are removed from the environment") {
  ::setenv("LISTEN_PID", "1", 1);
  ::setenv("LISTEN_FDS", "1", 1);
  ::setenv("LISTEN_FDNAMES", "x", 1);
  UnsetActivationEnvironment();
  CHECK(::getenv("LISTEN_PID") == nullptr);
  CHECK(::getenv("LISTEN_FDS") == nullptr);
  CHECK(::getenv("LISTEN_FDNAMES") == nullptr);
}

}  // namespace
}  // namespace lottery
