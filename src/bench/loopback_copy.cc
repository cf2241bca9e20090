// lottery-loopback-copy: the benchmark's yardstick (docs/PERFORMANCE.md).
//
// Pushes the bytes of the given files through one loopback TCP connection
// into an output file, as fast as the machine allows: a sender process reads
// the inputs in large chunks and writes them to the socket, a receiver
// process appends what arrives to the output file (and, with --sync, calls
// fdatasync once at the end). Nothing is parsed, validated or acknowledged,
// so no lottery round can move the same bytes faster. Prints one JSON line:
//   {"bytes": N, "seconds": S, "sync": true|false}
//
// Usage: lottery-loopback-copy [--sync] OUTPUT INPUT...
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace {

using lottery::UniqueFd;

constexpr std::size_t kChunk = 256 * 1024;

int Fail(const char* what) {
  std::fprintf(stderr, "lottery-loopback-copy: %s: %s\n", what, std::strerror(errno));
  return 1;
}

bool WriteAll(int fd, const char* data, std::size_t size) {
  while (size > 0) {
    ssize_t n = ::write(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// The receiver: accepts one connection and appends everything to `output`.
int Receive(int listener, const char* output, bool sync) {
  UniqueFd conn(::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC));
  if (!conn) return Fail("accept");
  UniqueFd out(::open(output, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out) return Fail(output);
  std::vector<char> buffer(kChunk);
  while (true) {
    ssize_t n = ::read(conn.get(), buffer.data(), buffer.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Fail("read socket");
    if (n == 0) break;
    if (!WriteAll(out.get(), buffer.data(), static_cast<std::size_t>(n)))
      return Fail("write output");
  }
  if (sync && ::fdatasync(out.get()) != 0) return Fail("fdatasync");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  bool sync = false;
  int arg = 1;
  if (arg < argc && std::strcmp(argv[arg], "--sync") == 0) {
    sync = true;
    ++arg;
  }
  if (argc - arg < 2) {
    std::fprintf(stderr, "usage: lottery-loopback-copy [--sync] OUTPUT INPUT...\n");
    return 64;
  }
  const char* output = argv[arg++];

  UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener) return Fail("socket");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::listen(listener.get(), 1) != 0 ||
      ::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    return Fail("listen on 127.0.0.1");
  }

  const auto start = std::chrono::steady_clock::now();
  pid_t receiver = ::fork();
  if (receiver < 0) return Fail("fork");
  if (receiver == 0) ::_exit(Receive(listener.get(), output, sync));
  listener.Reset();

  UniqueFd conn(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!conn || ::connect(conn.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    return Fail("connect");
  }
  std::vector<char> buffer(kChunk);
  std::uint64_t bytes = 0;
  int rc = 0;
  for (; arg < argc && rc == 0; ++arg) {
    UniqueFd in(::open(argv[arg], O_RDONLY | O_CLOEXEC));
    if (!in) {
      rc = Fail(argv[arg]);
      break;
    }
    while (true) {
      ssize_t n = ::read(in.get(), buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        rc = Fail(argv[arg]);
        break;
      }
      if (n == 0) break;
      if (!WriteAll(conn.get(), buffer.data(), static_cast<std::size_t>(n))) {
        rc = Fail("write socket");
        break;
      }
      bytes += static_cast<std::uint64_t>(n);
    }
  }
  ::shutdown(conn.get(), SHUT_WR);
  int status = 0;
  while (::waitpid(receiver, &status, 0) < 0 && errno == EINTR) {}
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (rc != 0) return rc;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "lottery-loopback-copy: the receiver failed\n");
    return 1;
  }
  std::printf("{\"bytes\": %llu, \"seconds\": %.6f, \"sync\": %s}\n",
              static_cast<unsigned long long>(bytes), seconds, sync ? "true" : "false");
  return 0;
}
