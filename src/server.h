// The server's parent process (the postmaster): it binds, accepts, forks one
// worker per connection, supervises and reaps them, and shuts everything down
// on SIGTERM or SIGINT. It never reads a bet.
//
// It owns, for its whole life: the listening socket, the signal descriptor,
// the shared segment, the winners file and the set of live workers.
#pragma once

#include "config.h"
#include "exit_codes.h"

namespace lottery {

// Runs the server until it is told to stop. Returns the process exit code.
int RunServer(const ServerConfig& config);

}  // namespace lottery
