// The local socket between a server's PostgreSQL committers
// (storage/pg_committer.h) and their clients, the workers and the parent:
// an abstract Unix socket, one connection per request (storage/pg_messages.h).
#pragma once

#include <string>
#include <string_view>

#include "common/status.h"
#include "common/unique_fd.h"
#include "storage/pg_messages.h"

namespace lottery {

// How long either side waits on the other: a transaction stuck longer than
// this is a database that stopped answering.
inline constexpr int kCommitterTimeoutMs = 60000;

// A listening socket for the committers: abstract (no file), bound by the
// kernel to a unique name, which `address` receives for the clients.
Result<UniqueFd> ListenForCommitters(std::string& address);

// The client side: one request at a time, each on a connection of its own,
// which whichever committer is free accepts (a worker never waits behind a
// busy committer while another idles; the requests of one worker stay in
// order, as each waits for its reply).
class PgCommitterLink {
 public:
  explicit PgCommitterLink(std::string address) : address_(std::move(address)) {}
  // Sends `request` and waits for its reply. When the connection breaks (a
  // committer that exited) the request is sent once more on a new one:
  // every request may be repeated (a store that committed is skipped the
  // second time, the others are idempotent).
  Result<PgReply> Call(const PgRequest& request);

 private:
  Result<PgReply> CallOnce(std::string_view head, std::string_view rows, PgRequestKind kind);
  std::string address_;
};

// Sends all of `bytes` on a socket, waiting up to kCommitterTimeoutMs for
// room each time it is full; false when the peer is gone or stuck.
bool SendAllWithin(int fd, std::string_view bytes);

}  // namespace lottery
