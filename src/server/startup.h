// The server's start-up: logs the configuration, creates the shared segment
// and the winners file, recovers storage (storage/recovery.h), binds (or
// takes the socket-activated listener), then hands everything to the
// Postmaster (server/postmaster.h), the parent loop, until it stops.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "server/server_config.h"

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
