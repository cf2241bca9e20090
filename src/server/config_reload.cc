#include "server/config_reload.h"

#include <array>

namespace lottery {
namespace {

constexpr std::array<std::string_view, 13> kReloadableKeys = {"log.level",
                                                              "server.read_timeout",
                                                              "server.hello_timeout",
                                                              "server.idle_timeout",
                                                              "server.listen_backlog",
                                                              "server.max_connections",
                                                              "server.max_pending",
                                                              "server.max_pending_per_source",
                                                              "server.shutdown_timeout",
                                                              "tls.certificate",
                                                              "tls.private_key",
                                                              "tls.client_ca",
                                                              "tls.crl"};

}  // namespace

bool IsReloadableKey(std::string_view key) {
  for (std::string_view k : kReloadableKeys) {
    if (k == key) return true;
  }
  return false;
}

std::vector<ConfigChange> DiffServerConfigs(const ServerConfig& running,
                                            const ServerConfig& loaded) {
  auto before = ServerConfigValues(running);
  auto after = ServerConfigValues(loaded);
  std::vector<ConfigChange> changes;
  for (std::size_t i = 0; i < before.size() && i < after.size(); ++i) {
    if (before[i].second == after[i].second) continue;
    changes.push_back(ConfigChange{before[i].first, before[i].second, after[i].second,
                                   IsReloadableKey(before[i].first)});
  }
  return changes;
}

ServerConfig ApplyReloadable(const ServerConfig& running, const ServerConfig& loaded) {
  ServerConfig next = running;
  next.log_level = loaded.log_level;
  next.read_timeout = loaded.read_timeout;
  next.hello_timeout = loaded.hello_timeout;
  next.idle_timeout = loaded.idle_timeout;
  next.max_pending = loaded.max_pending;
  next.max_pending_per_source = loaded.max_pending_per_source;
  next.listen_backlog = loaded.listen_backlog;
  next.max_connections = loaded.max_connections;
  next.shutdown_timeout = loaded.shutdown_timeout;
  // The mode needs a restart; the files may change (rotation).
  next.tls.certificate = loaded.tls.certificate;
  next.tls.private_key = loaded.tls.private_key;
  next.tls.ca = loaded.tls.ca;
  next.tls.crl = loaded.tls.crl;
  return next;
}

}  // namespace lottery
