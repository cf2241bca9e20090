#include "server/control_socket.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include <fmt/format.h>

#include "common/log.h"

namespace lottery {
namespace {

Result<sockaddr_un> UnixAddress(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof addr.sun_path) {
    return Fail(ErrorKind::kConfig,
                fmt::format("server.control_socket: {} must be 1..{} bytes long", path,
                            sizeof addr.sun_path - 1));
  }
  std::memcpy(addr.sun_path, path.data(), path.size());
  return addr;
}

// A socket file already at `path`: removed when nobody listens on it.
Status ClearStaleSocket(const std::string& path, const sockaddr_un& addr) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    return errno == ENOENT ? Ok() : FailErrno(fmt::format("stat {}", path));
  }
  if (!S_ISSOCK(st.st_mode)) {
    return Fail(
        ErrorKind::kConfig,
        fmt::format("server.control_socket: {} exists and is not a socket; not removed", path));
  }
  UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!probe) return FailErrno("socket(AF_UNIX)");
  if (::connect(probe.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0 ||
      errno == EAGAIN) {
    return Fail(ErrorKind::kBusy,
                fmt::format("server.control_socket: another server listens on {}; give this "
                            "one a control socket of its own",
                            path));
  }
  if (errno != ECONNREFUSED) return FailErrno(fmt::format("connect {}", path));
  Log(LogLevel::kWarning, "control", Outcome::kInProgress,
      "path: {} | detail: removing a socket file nobody listens on (a server that died)", path);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return FailErrno(fmt::format("unlink {}", path));
  }
  return Ok();
}

ControlPeer PeerOf(int fd) {
  ucred cred{};
  socklen_t len = sizeof cred;
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return ControlPeer{0, static_cast<uid_t>(-1)};  // unknown: refused
  }
  return ControlPeer{cred.pid, cred.uid};
}

}  // namespace

bool ControlPeerAllowed(uid_t peer, uid_t server_uid) { return peer == server_uid || peer == 0; }

Result<ControlEndpoint> ControlEndpoint::Open(const std::string& path) {
  auto addr = UnixAddress(path);
  if (!addr) return std::unexpected(addr.error());
  if (Status cleared = ClearStaleSocket(path, *addr); !cleared) {
    return std::unexpected(cleared.error());
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!fd) return FailErrno("socket(AF_UNIX)");
  // Created 0600 from the start: no moment when others could connect.
  const mode_t old_mask = ::umask(0177);
  const int bound = ::bind(fd.get(), reinterpret_cast<const sockaddr*>(&*addr), sizeof *addr);
  const int bind_errno = errno;
  ::umask(old_mask);
  if (bound != 0) return FailErrno(fmt::format("bind {}", path), bind_errno);
  struct stat st {};
  if (::chmod(path.c_str(), 0600) != 0 || ::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    ::unlink(path.c_str());
    return FailErrno(fmt::format("chmod {}", path), err);
  }
  ControlEndpoint endpoint(std::move(fd), path, st.st_ino);
  if (::listen(endpoint.listener_.get(), 16) != 0) return FailErrno(fmt::format("listen {}", path));
  return endpoint;
}

ControlEndpoint::ControlEndpoint(ControlEndpoint&& other) noexcept
    : listener_(std::move(other.listener_)),
      path_(std::exchange(other.path_, std::string())),
      inode_(other.inode_),
      clients_(std::move(other.clients_)) {}

ControlEndpoint::~ControlEndpoint() { Remove(); }

void ControlEndpoint::Remove() {
  clients_.clear();
  listener_.Reset();
  if (path_.empty()) return;
  // Removed only while it is still the file this endpoint created.
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && st.st_ino == inode_) ::unlink(path_.c_str());
  path_.clear();
}

void ControlEndpoint::Close() {
  clients_.clear();
  listener_.Reset();
  path_.clear();
}

void ControlEndpoint::AddPollFds(std::vector<pollfd>& fds) const {
  fds.push_back({listener_.get(), POLLIN, 0});
  for (const Client& c : clients_) {
    fds.push_back({c.fd.get(), static_cast<short>(c.reply.empty() ? POLLIN : POLLOUT), 0});
  }
}

void ControlEndpoint::OnPoll(const std::vector<pollfd>& fds, std::size_t first,
                             const Handler& handler) {
  const auto now = Clock::now();
  // The entries after the listener's are the clients as they were when
  // AddPollFds ran; none was added or removed since.
  for (std::size_t i = 0; i < clients_.size() && first + 1 + i < fds.size(); ++i) {
    Client& c = clients_[i];
    const short ev = fds[first + 1 + i].revents;
    bool keep = true;
    if (ev & (POLLIN | POLLHUP | POLLERR)) keep = c.reply.empty() ? Read(c, handler) : Write(c);
    else if (ev & POLLOUT) keep = Write(c);
    if (keep && now >= c.deadline) {
      Log(LogLevel::kWarning, "control", Outcome::kFail,
          "uid: {} | pid: {} | error: no whole request and reply within {} ms; closed", c.peer.uid,
          c.peer.pid, kDeadline.count());
      keep = false;
    }
    if (!keep) c.fd.Reset();
  }
  std::erase_if(clients_, [](const Client& c) { return !c.fd.valid(); });
  if (first < fds.size() && (fds[first].revents & POLLIN)) AcceptAll();
}

std::optional<ControlEndpoint::Clock::time_point> ControlEndpoint::NextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const Client& c : clients_) next = next ? std::min(*next, c.deadline) : c.deadline;
  return next;
}

void ControlEndpoint::AcceptAll() {
  for (int n = 0; n < 16; ++n) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN (nothing left) or a transient error
    const ControlPeer peer = PeerOf(fd.get());
    if (clients_.size() >= kMaxClients) {
      Log(LogLevel::kWarning, "control", Outcome::kFail,
          "uid: {} | pid: {} | error: {} control connections in progress already; refused",
          peer.uid, peer.pid, kMaxClients);
      const std::string busy = EncodeControlReply(ControlReply::Failure(
          fmt::format("busy: {} control connections in progress; retry", kMaxClients)));
      (void)::send(fd.get(), busy.data(), busy.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      continue;  // closed by UniqueFd
    }
    // A peer that may not ask is still read first and refused after its
    // line: closing on an unread request would reset the connection before
    // the client could read why.
    clients_.push_back(Client{std::move(fd), peer, Clock::now() + kDeadline, {}, {}, 0});
  }
}

bool ControlEndpoint::Read(Client& c, const Handler& handler) {
  char buf[512];
  while (c.request.find('\n') == std::string::npos && c.request.size() <= kMaxControlRequestBytes) {
    ssize_t n = ::recv(c.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      c.request.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // wait for more
    if (n < 0 || c.request.empty()) return false;  // failed, or closed without a word
    break;  // closed after a partial line: answered as a bad request
  }
  Answer(c, handler);
  return Write(c);
}

void ControlEndpoint::Answer(Client& c, const Handler& handler) {
  if (!ControlPeerAllowed(c.peer.uid, ::geteuid())) {
    Log(LogLevel::kWarning, "control", Outcome::kFail,
        "uid: {} | pid: {} | error: permission denied (only uid {} or root)", c.peer.uid,
        c.peer.pid, ::geteuid());
    c.reply = EncodeControlReply(ControlReply::Failure(
        fmt::format("permission denied: uid {} may not control this server (only uid {} or root)",
                    c.peer.uid, ::geteuid())));
    return;
  }
  const std::size_t end = c.request.find('\n');
  auto request = DecodeControlRequest(
      std::string_view(c.request).substr(0, end == std::string::npos ? c.request.size() : end + 1));
  if (!request) {
    Log(LogLevel::kWarning, "control", Outcome::kFail, "uid: {} | pid: {} | error: {}", c.peer.uid,
        c.peer.pid, request.error().message);
    c.reply = EncodeControlReply(ControlReply::Failure("bad request: " + request.error().message));
    return;
  }
  const ControlReply reply = handler(*request, c.peer);
  Log(request->command == "status" ? LogLevel::kDebug : LogLevel::kInfo, "control",
      reply.ok() ? Outcome::kSuccess : Outcome::kFail, "command: {} | uid: {} | pid: {}{}",
      LogSafe(request->command, 32), c.peer.uid, c.peer.pid,
      reply.ok() ? std::string() : " | error: " + std::string(reply.error()));
  c.reply = EncodeControlReply(reply);
}

bool ControlEndpoint::Write(Client& c) {
  while (c.sent < c.reply.size()) {
    ssize_t n = ::send(c.fd.get(), c.reply.data() + c.sent, c.reply.size() - c.sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // POLLOUT next
    return false;
  }
  ::shutdown(c.fd.get(), SHUT_WR);
  return false;  // answered: closed by the caller
}

}  // namespace lottery
