// The server's parent process (the postmaster): it binds (or takes the
// socket-activated listener), accepts, forks one worker per connection,
// supervises and reaps them, re-reads its configuration on SIGHUP, reports
// to the service manager, and shuts everything down on SIGTERM or SIGINT.
// It never reads a bet.
//
// It owns, for its whole life: the listening socket, the signal descriptor,
// the shared segment, the winners file and the set of live workers.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config.h"
#include "exit_codes.h"

namespace lottery {

// How the process was started: what a reload reads the configuration from
// again (same flags, same environment), and the service manager's variables
// (NOTIFY_SOCKET, WATCHDOG_USEC, LISTEN_FDS...).
struct ServerLaunch {
  std::vector<std::string> argv;
  std::map<std::string, std::string> env;
};

// Runs the server until it is told to stop. Returns the process exit code.
int RunServer(const ServerConfig& config, const ServerLaunch& launch);

// --check-config: prints the effective configuration to stdout, logs that it
// is valid, and returns 0.
int ReportValidConfig(const ServerConfig& config);

}  // namespace lottery
