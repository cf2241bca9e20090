// The server's parent process (the postmaster): it binds, accepts, forks one
// worker per connection, supervises and reaps them, and shuts everything down
// on SIGTERM or SIGINT. It never reads a bet.
//
// It owns, for its whole life: the listening socket, the signal descriptor,
// the shared segment, the winners file and the set of live workers.
#pragma once

#include "config.h"

namespace lottery {

// sysexits-style exit codes used by both programs.
inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // EX_USAGE
inline constexpr int kExitDataErr = 65;      // EX_DATAERR
inline constexpr int kExitNoInput = 66;      // EX_NOINPUT
inline constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE
inline constexpr int kExitSoftware = 70;     // EX_SOFTWARE
inline constexpr int kExitOsErr = 71;        // EX_OSERR
inline constexpr int kExitCantCreate = 73;   // EX_CANTCREAT
inline constexpr int kExitProtocol = 76;     // EX_PROTOCOL
inline constexpr int kExitConfig = 78;       // EX_CONFIG

// Runs the server until it is told to stop. Returns the process exit code.
int RunServer(const ServerConfig& config);

}  // namespace lottery
