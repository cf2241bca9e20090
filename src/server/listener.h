// The server's listening socket: the one the service manager passed
// (socket activation, server/socket_activation.h), or one bound to
// server.address:server.port. Each outcome is logged here.
#pragma once

#include <optional>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"
#include "server/server_config.h"
#include "server/socket_activation.h"

namespace lottery {

struct Listener {
  UniqueFd socket;
  std::string description;  // "0.0.0.0:12345" or "port 12345 (socket activation)"
};

// Takes `activated` when there is one, else binds. Fails (logged) when
// binding fails.
Result<Listener> OpenListener(const ServerConfig& config, std::optional<ActivatedSocket> activated);

}  // namespace lottery
