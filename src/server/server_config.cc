#include "server/server_config.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/agency_limit.h"
#include "common/net.h"
#include "server/metrics_endpoint.h"
#include "wire/bet.h"
#include "wire/control_protocol.h"

namespace lottery {
namespace {

// The server's keys, bound to the fields of `c`.
ProgramSpec ServerSpec(ServerConfig& c) {
  ProgramSpec spec{"lottery-server",
                   "Collects the agencies' bets and runs the lottery draw.",
                   "SERVER_CONFIG",
                   {},
                   &c.check_only,
                   "0 ok, 64 bad flag, 71 cannot bind or no shared memory, 73 bets file not "
                   "writable, 75 another server owns the bets file, 78 bad configuration"};
  auto& s = spec.settings;
  s.push_back(Setting{"server.address", "SERVER_ADDRESS", "--address", SettingKind::kString,
                      "an address to listen on: an IP address, or a host name that resolves here",
                      c.address,
                      "address to listen on (0.0.0.0: every IPv4 interface, :: every interface)",
                      [&c](std::string_view text) {
                        // Checked now, so --check-config and a start agree.
                        if (text.empty() || !CheckListenAddress(std::string(text))) return false;
                        c.address = std::string(text);
                        return true;
                      }});
  s.push_back(
      IntegerSetting("server.port", "SERVER_PORT", "--port", &c.port, 1, 65535, "TCP port"));
  s.push_back(IntegerSetting("server.listen_backlog", "SERVER_LISTEN_BACKLOG", "--listen-backlog",
                             &c.listen_backlog, 1, 65535, "pending connections the kernel queues"));
  s.push_back(IntegerSetting("server.agencies", "SERVER_AGENCIES", "--agencies", &c.agencies, 1,
                             kMaxAgencies, "agencies taking part; the draw waits for all of them"));
  s.push_back(DurationSetting("server.read_timeout", "SERVER_READ_TIMEOUT", "--read-timeout",
                              &c.read_timeout, ZeroDuration::kRefused,
                              "a frame must arrive whole within read_timeout"));
  s.push_back(DurationSetting("server.hello_timeout", "SERVER_HELLO_TIMEOUT", "--hello-timeout",
                              &c.hello_timeout, ZeroDuration::kRefused,
                              "drop a connection that sends nothing this long after connecting"));
  s.push_back(DurationSetting("server.idle_timeout", "SERVER_IDLE_TIMEOUT", "--idle-timeout",
                              &c.idle_timeout, ZeroDuration::kRefused,
                              "drop a connection that sends nothing this long between messages "
                              "(not while it waits for the draw)"));
  s.push_back(DurationSetting("server.shutdown_timeout", "SERVER_SHUTDOWN_TIMEOUT",
                              "--shutdown-timeout", &c.shutdown_timeout, ZeroDuration::kRefused,
                              "on SIGTERM, how long workers get before SIGKILL"));
  s.push_back(IntegerSetting(
      "server.max_connections", "SERVER_MAX_CONNECTIONS", "--max-connections", &c.max_connections,
      0, 100000,
      "connections served at once, 0 or >= agencies; beyond it the oldest connection that "
      "has not said HELLO is evicted, else the new one refused (0: max_pending + 2 x "
      "agencies + 16)"));
  s.push_back(IntegerSetting("server.max_pending", "SERVER_MAX_PENDING", "--max-pending",
                             &c.max_pending, 0, 100000,
                             "connections that have not said HELLO yet, served at once; beyond it "
                             "the oldest of them is evicted (0: max(256, 2 x agencies))"));
  s.push_back(IntegerSetting("server.max_pending_per_source", "SERVER_MAX_PENDING_PER_SOURCE",
                             "--max-pending-per-source", &c.max_pending_per_source, 0, 100000,
                             "connections from one address that have not said HELLO yet; beyond "
                             "it, once the room is 3/4 full, that address's oldest is evicted "
                             "(0: no cap)"));
  s.push_back(Setting{"server.metrics_address", "SERVER_METRICS_ADDRESS", "--metrics-address",
                      SettingKind::kString, "\"\" (off) or HOST:PORT, e.g. 127.0.0.1:9464",
                      c.metrics_address,
                      "serve Prometheus metrics on GET /metrics at HOST:PORT (\"\": off)",
                      [&c](std::string_view text) {
                        if (text.empty() || text == "off") {
                          c.metrics_address.clear();
                          return true;
                        }
                        auto hp = ParseMetricsAddress(text);
                        if (!hp || !CheckListenAddress(hp->host)) return false;
                        c.metrics_address = std::string(text);
                        return true;
                      }});
  s.push_back(
      Setting{"server.control_socket", "SERVER_CONTROL_SOCKET", "--control-socket",
              SettingKind::kString, "a path, or \"\" for the default", c.control_socket,
              "Unix socket for lotteryctl, mode 0600 (\"\": $RUNTIME_DIRECTORY/control.sock "
              "under systemd, else <storage.path>.control)",
              [&c](std::string_view text) {
                c.control_socket = std::string(text);
                return true;
              }});
  s.push_back(TextSetting("storage.path", "SERVER_STORAGE_PATH", "--storage", &c.storage_path,
                          "the bets file (docs/STORAGE.md)"));
  s.push_back(Setting{"storage.sync", "SERVER_STORAGE_SYNC", "--storage-sync", SettingKind::kString,
                      "one of always, never", SyncModeName(c.storage_sync),
                      "always: a batch is on disk (fdatasync) before its ack; never: faster, "
                      "an acked batch can be lost in a crash",
                      [&c](std::string_view text) {
                        for (SyncMode m : {SyncMode::kAlways, SyncMode::kNever}) {
                          if (text == SyncModeName(m)) {
                            c.storage_sync = m;
                            return true;
                          }
                        }
                        return false;
                      }});
  s.push_back(Setting{
      "storage.backend", "SERVER_STORAGE_BACKEND", "--storage-backend", SettingKind::kString,
      "one of file, postgresql", StorageBackendName(c.storage_backend),
      "where bets are stored: the bets file (storage.path) or PostgreSQL "
      "(storage.postgresql_dsn)",
      [&c](std::string_view text) {
        for (StorageBackend b : {StorageBackend::kFile, StorageBackend::kPostgresql}) {
          if (text == StorageBackendName(b)) {
            c.storage_backend = b;
            return true;
          }
        }
        return false;
      }});
  s.push_back(Setting{"storage.postgresql_dsn", "SERVER_STORAGE_DSN", "--storage-dsn",
                      SettingKind::kString, "a libpq connection string or URI, or \"\"",
                      c.postgresql_dsn,
                      "libpq connection string or URI (multi-host with "
                      "target_session_attrs=read-write); the password from a passfile",
                      [&c](std::string_view text) {
                        c.postgresql_dsn = std::string(text);
                        return true;
                      }});
  s.push_back(IntegerSetting("storage.postgresql_connections",
                             "SERVER_STORAGE_POSTGRESQL_CONNECTIONS",
                             "--storage-postgresql-connections", &c.postgresql_connections, 2, 64,
                             "PostgreSQL sessions at most, whatever the number of agencies: one "
                             "holds the lease, the others commit batches"));
  s.push_back(BooleanSetting("server.standby", "SERVER_STANDBY", "--standby", &c.standby,
                             "postgresql backend: wait for the active server's lease, then take "
                             "over, instead of refusing to start"));
  s.push_back(Setting{"draw.winning_number", "SERVER_WINNING_NUMBER", "--winning-number",
                      SettingKind::kIntegerOrWord, "an integer 0..9999, or \"random\"",
                      c.winning_number == kRandomWinningNumber ? std::string("random")
                                                               : std::to_string(c.winning_number),
                      "the number that wins; random: drawn from getrandom() when the draw runs",
                      [&c](std::string_view text) {
                        if (text == "random") {
                          c.winning_number = kRandomWinningNumber;
                          return true;
                        }
                        auto v = ParseInteger(text);
                        if (!v || *v < 0 || *v > 9999) return false;
                        c.winning_number = static_cast<std::uint32_t>(*v);
                        return true;
                      }});
  s.push_back(DurationSetting("draw.deadline", "SERVER_DRAW_DEADLINE", "--draw-deadline",
                              &c.draw_deadline, ZeroDuration::kAllowed,
                              "close betting this long after the server is ready and draw over "
                              "the agencies that finished (0: wait for every agency)"));
  s.push_back(LogLevelSetting("LOGGING_LEVEL", "--log-level", &c.log_level));
  s.push_back(TlsModeSetting("SERVER_TLS_MODE", "--tls-mode", &c.tls.mode));
  s.push_back(TextSetting("tls.certificate", "SERVER_TLS_CERTIFICATE", "--tls-cert",
                          &c.tls.certificate, "PEM file: the server's certificate"));
  s.push_back(TextSetting("tls.private_key", "SERVER_TLS_PRIVATE_KEY", "--tls-key",
                          &c.tls.private_key, "PEM file: the server's private key"));
  s.push_back(TextSetting("tls.client_ca", "SERVER_TLS_CLIENT_CA", "--tls-client-ca", &c.tls.ca,
                          "PEM file: the CA that signs the agencies' certificates"));
  s.push_back(TextSetting("tls.crl", "SERVER_TLS_CRL", "--tls-crl", &c.tls.crl,
                          "PEM file, optional: revoked agency certificates (re-read on SIGHUP)"));
  return spec;
}

}  // namespace

const char* StorageBackendName(StorageBackend backend) {
  return backend == StorageBackend::kPostgresql ? "postgresql" : "file";
}

std::string RedactDsn(std::string_view dsn) {
  std::string out(dsn);
  // URI: scheme://user:password@host
  if (auto scheme = out.find("://"); scheme != std::string::npos) {
    const auto at = out.find('@', scheme);
    const auto colon = out.find(':', scheme + 3);
    if (at != std::string::npos && colon != std::string::npos && colon < at) {
      out.replace(colon + 1, at - colon - 1, "***");
    }
  }
  // key=value: password=secret or password='se cret'; also ?password= in a URI.
  for (std::size_t at = out.find("password="); at != std::string::npos;
       at = out.find("password=", at + 1)) {
    std::size_t start = at + 9;
    std::size_t end = start;
    if (end < out.size() && out[end] == '\'') {
      end = out.find('\'', end + 1);
      end = end == std::string::npos ? out.size() : end + 1;
    } else {
      while (end < out.size() && out[end] != ' ' && out[end] != '&') ++end;
    }
    out.replace(start, end - start, "***");
  }
  return out;
}

std::expected<ServerConfig, ConfigError> LoadServerConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  ServerConfig c;
  ProgramSpec spec = ServerSpec(c);
  auto loaded = LoadSettings(argv, env, spec, c.config_file);
  if (!loaded) return std::unexpected(loaded.error());
  if (loaded->action != ConfigAction::kRun) {
    c.request = std::move(*loaded);
    return c;
  }
  if (auto limit = CheckConnectionLimit(c); !limit) return std::unexpected(limit.error());
  if (c.storage_backend == StorageBackend::kPostgresql && c.postgresql_dsn.empty()) {
    return ConfigFail(
        "config: storage.backend is postgresql but storage.postgresql_dsn is not set "
        "(SERVER_STORAGE_DSN, --storage-dsn)");
  }
  if (auto files = CheckTlsFilesGiven(c.tls, {{"tls.certificate", &c.tls.certificate},
                                              {"tls.private_key", &c.tls.private_key},
                                              {"tls.client_ca", &c.tls.ca}});
      !files) {
    return std::unexpected(files.error());
  }
  return c;
}

std::expected<void, ConfigError> CheckConnectionLimit(const ServerConfig& c) {
  // Every agency keeps its connection until the draw: fewer slots than
  // agencies would deadlock the round.
  if (c.max_connections != 0 && c.max_connections < c.agencies) {
    // The two keys may come from different places: name the file they were
    // read with, the way a single key's error does.
    const std::string where =
        c.config_file.empty()
            ? std::string("no config file (environment and flags)")
            : fmt::format("{} (with the environment and flags over it)", c.config_file);
    return ConfigFail(fmt::format(
        "config: server.max_connections ({}) must be 0 or at least server.agencies ({}), since "
        "every agency stays connected until the draw; configuration: {}",
        c.max_connections, c.agencies, where));
  }
  return {};
}

std::string ServerConfig::EffectiveControlSocket(
    const std::map<std::string, std::string>& env) const {
  if (!control_socket.empty()) return control_socket;
  auto runtime = env.find("RUNTIME_DIRECTORY");
  return DefaultControlSocketPath(storage_path,
                                  runtime == env.end() ? std::string_view() : runtime->second);
}

int ServerConfig::EffectiveMaxPending() const {
  return max_pending > 0 ? max_pending : std::max(256, 2 * agencies);
}

int ServerConfig::EffectiveMaxConnections() const {
  return max_connections > 0 ? max_connections : EffectiveMaxPending() + 2 * agencies + 16;
}

std::vector<std::pair<std::string, std::string>> ServerConfigValues(const ServerConfig& config) {
  ServerConfig copy = config;
  std::vector<std::pair<std::string, std::string>> values;
  for (const Setting& s : ServerSpec(copy).settings) {
    // Reported by --check-config and logged by a reload: never a password.
    values.emplace_back(
        s.key, s.key == "storage.postgresql_dsn" ? RedactDsn(s.default_text) : s.default_text);
  }
  return values;
}

}  // namespace lottery
