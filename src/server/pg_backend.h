// PgBackend is the parent's side of storage.backend = "postgresql"
// (docs/STORAGE.md, "PostgreSQL"): the lease session, the fencing epoch and
// the committer processes (storage/pg_committer.h). Contract: a server
// serves only while its lease session holds the advisory lock; it took a
// new epoch when it got it, so a server that lost the lease can commit
// nothing more; at most storage.postgresql_connections sessions are open
// (the lease's and the committers').
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "common/signals.h"
#include "common/unique_fd.h"
#include "server/server_config.h"
#include "shm/shared_state.h"
#include "storage/pg_committer.h"
#include "storage/pg_store.h"

namespace lottery {

class PgBackend {
 public:
  // Connects, creates or checks the schema, takes the lease and bumps the
  // epoch. With server.standby it waits for the lease (reconnecting to the
  // database as long as it takes) until SIGTERM or SIGINT on `signals`.
  // Fails with the exit code: 78 a bad DSN, a refused login or a schema of
  // another version; 69 the database is unreachable; 75 another server
  // holds the lease (not a standby); 0 stopped while waiting.
  static std::expected<PgBackend, int> Acquire(const ServerConfig& config, SignalFd& signals);

  PgBackend(PgBackend&&) = default;
  ~PgBackend();

  // Publishes the current round's state in the segment (and its result
  // when drawn). Returns an exit code (0: go on).
  int Recover(SharedSegment& shared, int winners_fd);

  // Opens the committers' socket and forks them. `in_child` runs first in
  // each child (the caller closes what the child must not hold).
  Status StartCommitters(std::function<void()> in_child);
  // A child exited: true when it was a committer, which is forked again
  // unless it was fenced (`fenced` is set then) or the server is stopping.
  bool OnChildExit(pid_t pid, int status, bool& fenced);
  // SIGTERM to the committers, and waits for them.
  void StopCommitters();

  // The lease session's socket, for the parent's poll().
  int lease_fd() const { return lease_.socket(); }
  // Reads what arrived on the lease session; false once it is lost.
  bool LeaseAlive();

  const std::string& committer_address() const { return address_; }
  PgCommitterLink& link() { return link_; }
  std::uint64_t epoch() const { return epoch_; }
  std::uint32_t agencies() const { return agencies_; }

 private:
  PgBackend(PgSession lease, std::uint64_t epoch, const ServerConfig& config);
  Result<pid_t> ForkCommitter(int index);

  PgSession lease_;
  std::uint64_t epoch_;
  std::string dsn_;
  std::uint32_t agencies_;
  std::uint32_t winning_number_;  // draw.winning_number: what rounds index
  int committers_wanted_;
  UniqueFd listener_;
  std::string address_;
  PgCommitterLink link_{""};
  std::function<void()> in_child_;
  std::set<pid_t> committers_;
  // When committers were forked again, for the limit per minute.
  std::vector<std::chrono::steady_clock::time_point> restarts_;
  bool stopping_ = false;
};

}  // namespace lottery
