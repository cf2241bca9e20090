// A worker is the forked child that serves one connection, from the agency's
// HELLO to its winners (or an echo peer, or a peer that misbehaves). It opens
// its own descriptor on the bets file, since flock() only excludes between
// separate opens of the file.
//
// The worker borrows everything the parent set up before fork(): the shared
// segment and the winners file must stay mapped/open for its whole life.
#pragma once

#include <cstdint>
#include <string>

#include "common/config_loader.h"
#include "common/log.h"
#include "common/unique_fd.h"
#include "shm/shared_state.h"
#include "storage/sync_mode.h"
#include "tls/tls_context.h"

namespace lottery {

// What a worker needs of the server's configuration (the parent fills it
// in from its own; a reload reaches running workers through the segment's
// RuntimeSettings instead).
struct WorkerOptions {
  std::string storage_path;
  // The committers' address on the PostgreSQL backend (storage/pg_committer.h);
  // "" on the file backend.
  std::string pg_committer;
  SyncMode storage_sync = SyncMode::kAlways;
  std::uint32_t winning_number = 0;
  Seconds read_timeout{60.0};
  Seconds hello_timeout{10.0};
  Seconds idle_timeout{60.0};
  LogLevel log_level = LogLevel::kInfo;
  // The parent's TLS context (inherited across fork); nullptr: tls.mode off.
  const TlsContext* tls = nullptr;
  // Set by RunWorker: hello_timeout after the worker started. The TLS
  // handshake and everything before HELLO (ECHO included) share it.
  std::chrono::steady_clock::time_point hello_deadline{};
};

// With TLS, runs the handshake first (bounded by hello_timeout); then
// serves `connection` and returns the worker's exit status (0 on a clean end,
// including a shutdown; 1 when the worker itself failed).
int RunWorker(UniqueFd connection, const WorkerOptions& options, SharedSegment& shared,
              int winners_fd);

}  // namespace lottery
