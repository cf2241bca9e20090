// A PostgreSQL committer: a process that holds one database session and
// runs the storage requests of the server's workers and parent
// (storage/pg_messages.h) on it. The parent forks a few of them
// (storage.postgresql_connections) whatever the number of agencies; every
// worker talks to one of them through a local stream socket.
//
// Contract: a request is answered only after its transaction committed or
// failed. Each connection carries one request and its reply. Small store
// requests that arrive together, from several workers, share one
// transaction and one commit (group commit); a committer holding about
// 256 KiB of them takes no more, so large stores run side by side on the
// committers' sessions. Only peers of the server's
// own user are served (SO_PEERCRED). The committer exits
//   kExitOk          on SIGTERM or when its parent dies,
//   kExitTempFail    when fenced: another server took the lease over,
//   kExitUnavailable when its session is lost (the parent starts another).
#pragma once

#include <cstdint>
#include <string>

#include "common/unique_fd.h"
#include "storage/pg_committer_link.h"
#include "storage/pg_messages.h"
#include "wire/bet.h"

namespace lottery {

struct PgCommitterOptions {
  std::string dsn;
  std::uint64_t epoch = 0;  // the server's fencing epoch
  std::uint32_t agencies = 0;
  int index = 0;  // for its application_name and log lines
  // draw.winning_number: the rounds it opens index its bets (pg_store.h).
  std::uint32_t winning_number = kRandomWinningNumber;
};

// Runs in a forked child: connects, then serves the connections that
// arrive on `listener` until one of the exits above. Returns the exit code.
int RunPgCommitter(const PgCommitterOptions& options, int listener);

}  // namespace lottery
