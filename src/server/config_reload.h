// What a configuration reload (SIGHUP) may change in a running server.
//
// Reloadable keys take effect at once: log.level, server.read_timeout,
// server.hello_timeout, server.idle_timeout, server.listen_backlog,
// server.max_connections, server.max_pending, server.shutdown_timeout.
// Every other key (address, port, agencies, storage path, winning number)
// shapes the round itself, so a change to it is reported and ignored until
// the next restart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "server/server_config.h"

namespace lottery {

struct ConfigChange {
  std::string key;        // "server.port"
  std::string old_value;  // as text, the way the config file writes it
  std::string new_value;
  bool reloadable = false;
};

bool IsReloadableKey(std::string_view key);

// The keys whose value differs between the running and the newly loaded
// configuration, in --help order.
std::vector<ConfigChange> DiffServerConfigs(const ServerConfig& running,
                                            const ServerConfig& loaded);

// `running` with the reloadable keys taken from `loaded`; every other key
// keeps its running value.
ServerConfig ApplyReloadable(const ServerConfig& running, const ServerConfig& loaded);

}  // namespace lottery
