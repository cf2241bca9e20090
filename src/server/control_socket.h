// ControlEndpoint serves lotteryctl on a Unix stream socket
// (server.control_socket, mode 0600) from inside the parent's poll loop, the
// way MetricsEndpoint serves scrapes: every socket is non-blocking, a client
// sends one request line (wire/control_protocol.h) within kDeadline, gets
// its reply and is closed, and at most kMaxClients are served at once (more
// get a one-line refusal at accept). So a stalled or hostile client costs
// the parent a descriptor for a second and never delays the lottery.
//
// Only the server's own uid and root may ask anything (SO_PEERCRED); anyone
// else gets an ok=0 reply and a log line.
//
// Owns its listening socket, the client connections and the socket file,
// which it removes when it goes away (a forked worker calls Close() first,
// which leaves the file to the parent).
#pragma once

#include <poll.h>
#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "wire/control_protocol.h"

namespace lottery {

// Who is on the other end of a control connection (SO_PEERCRED).
struct ControlPeer {
  pid_t pid = 0;
  uid_t uid = 0;
};

// Whether `peer` may control a server running as `server_uid`: the same
// uid, or root.
bool ControlPeerAllowed(uid_t peer, uid_t server_uid);

class ControlEndpoint {
 public:
  using Clock = std::chrono::steady_clock;
  using Handler = std::function<ControlReply(const ControlRequest&, const ControlPeer&)>;

  static constexpr std::size_t kMaxClients = 4;
  static constexpr std::chrono::milliseconds kDeadline{1000};

  // Creates the socket at `path`, mode 0600. A socket file nobody listens
  // on (left by a server that died) is replaced. Fails with kBusy when
  // another process listens there, kConfig when `path` is too long or is
  // something other than a socket, kIo otherwise.
  static Result<ControlEndpoint> Open(const std::string& path);

  ControlEndpoint(ControlEndpoint&& other) noexcept;
  ControlEndpoint& operator=(ControlEndpoint&&) = delete;
  ControlEndpoint(const ControlEndpoint&) = delete;
  ~ControlEndpoint();

  const std::string& path() const { return path_; }

  // Appends the descriptors to poll; OnPoll takes the same entries back.
  void AddPollFds(std::vector<pollfd>& fds) const;
  // Serves what poll() reported on the entries AddPollFds added (starting
  // at `first`), and drops clients past their deadline.
  void OnPoll(const std::vector<pollfd>& fds, std::size_t first, const Handler& handler);
  // When the earliest client expires (none: nullopt).
  std::optional<Clock::time_point> NextDeadline() const;

  // In a forked worker: closes every descriptor, leaves the socket file.
  void Close();
  // At a clean stop: closes every descriptor and removes the socket file if
  // it is still the one this endpoint created (the destructor does too).
  void Remove();

 private:
  struct Client {
    UniqueFd fd;
    ControlPeer peer;
    Clock::time_point deadline;
    std::string request;
    std::string reply;  // empty until the request is whole (or refused)
    std::size_t sent = 0;
  };

  ControlEndpoint(UniqueFd listener, std::string path, ino_t inode)
      : listener_(std::move(listener)), path_(std::move(path)), inode_(inode) {}

  void AcceptAll();
  // Returns false when the client is done (answered, failed or closed).
  bool Read(Client& c, const Handler& handler);
  bool Write(Client& c);
  void Answer(Client& c, const Handler& handler);

  UniqueFd listener_;
  std::string path_;  // "" once the file is not ours to remove
  ino_t inode_ = 0;   // the socket file this endpoint created
  std::vector<Client> clients_;
};

}  // namespace lottery
