// The server's configuration keys (conf/server.toml documents each one with
// its default) and the rules between them. Loading goes through the generic
// loader (common/config_loader.h): defaults < file < environment < flags.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/config_loader.h"
#include "common/log.h"
#include "storage/sync_mode.h"
#include "tls/tls_settings.h"

namespace lottery {

enum class StorageBackend { kFile, kPostgresql };
// "file", "postgresql".
const char* StorageBackendName(StorageBackend backend);

// `dsn` with its password replaced by "***" (key=value and URI forms).
std::string RedactDsn(std::string_view dsn);

struct ServerConfig {
  std::string config_file;          // "" when no file was read
  std::string address = "0.0.0.0";  // server.address        SERVER_ADDRESS   --address
  std::uint16_t port = 12345;       // server.port           SERVER_PORT      --port
  int listen_backlog = 1024;        // server.listen_backlog SERVER_LISTEN_BACKLOG
  int agencies = 5;                 // server.agencies       SERVER_AGENCIES  --agencies
  Seconds read_timeout{60.0};       // server.read_timeout   SERVER_READ_TIMEOUT
  Seconds hello_timeout{10.0};      // server.hello_timeout  SERVER_HELLO_TIMEOUT
  Seconds idle_timeout{60.0};       // server.idle_timeout   SERVER_IDLE_TIMEOUT
  Seconds shutdown_timeout{5.0};    // server.shutdown_timeout SERVER_SHUTDOWN_TIMEOUT
  int max_connections = 0;          // server.max_connections SERVER_MAX_CONNECTIONS (0: auto)
  int max_pending = 0;              // server.max_pending    SERVER_MAX_PENDING (0: auto)
  int max_pending_per_source = 8;   // server.max_pending_per_source (0: no cap)
  std::string metrics_address;      // server.metrics_address SERVER_METRICS_ADDRESS ("": off)
  // server.control_socket SERVER_CONTROL_SOCKET --control-socket: the Unix
  // socket lotteryctl talks to ("": the default, EffectiveControlSocket).
  std::string control_socket;
  std::string storage_path = "bets.csv";      // storage.path    SERVER_STORAGE_PATH --storage
  SyncMode storage_sync = SyncMode::kAlways;  // storage.sync SERVER_STORAGE_SYNC --storage-sync
  // storage.backend SERVER_STORAGE_BACKEND --storage-backend: the bets file
  // or PostgreSQL (docs/STORAGE.md, "PostgreSQL").
  StorageBackend storage_backend = StorageBackend::kFile;
  // storage.postgresql_dsn SERVER_STORAGE_DSN --storage-dsn: a libpq
  // connection string or URI; its password is never logged (RedactDsn).
  std::string postgresql_dsn;
  // storage.postgresql_connections SERVER_STORAGE_POSTGRESQL_CONNECTIONS:
  // database sessions at most (the lease's and the committers').
  int postgresql_connections = 4;
  // server.standby SERVER_STANDBY --standby: wait for the lease that
  // another server holds instead of refusing to start.
  bool standby = false;
  std::uint32_t winning_number = 7574;   // draw.winning_number SERVER_WINNING_NUMBER
  Seconds draw_deadline{0.0};            // draw.deadline   SERVER_DRAW_DEADLINE (0: none)
  LogLevel log_level = LogLevel::kInfo;  // log.level       LOGGING_LEVEL    --log-level
  // tls.mode, tls.certificate, tls.private_key, tls.client_ca (in tls.ca),
  // tls.crl: SERVER_TLS_* and --tls-* (docs/SECURITY.md).
  TlsSettings tls;
  bool check_only = false;  // --check-config: validate and exit
  // kRun, or --help / --version: main() answers it (AnswerConfigRequest) and
  // exits; nothing else is loaded or checked then.
  ConfigRequest request;

  // Connections served at once: max_connections, or when 0, the pending
  // room plus twice the agencies plus room for health checks and reconnects.
  int EffectiveMaxConnections() const;
  // Connections not yet introduced (no HELLO yet) served at once:
  // max_pending, or when 0, max(256, 2 x agencies). Beyond it the oldest is
  // evicted (server/pending_room.h): they can never keep an agency out.
  int EffectiveMaxPending() const;
  // control_socket, or when "", its default for this environment:
  // $RUNTIME_DIRECTORY/control.sock, else <storage_path>.control
  // (wire/control_protocol.h DefaultControlSocketPath).
  std::string EffectiveControlSocket(const std::map<std::string, std::string>& env) const;
};

// argv[0] is the program name. env is the process environment as NAME ->
// value (tests pass their own).
std::expected<ServerConfig, ConfigError> LoadServerConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);

// The rules between keys: server.max_connections is 0 or at least
// server.agencies. LoadServerConfig applies it; a reload checks it again
// against the running agencies.
std::expected<void, ConfigError> CheckConnectionLimit(const ServerConfig& config);

// Every key of a server configuration with its value as text, in --help
// order ("server.port" -> "12345"). Used to report what a reload changed.
std::vector<std::pair<std::string, std::string>> ServerConfigValues(const ServerConfig& config);

}  // namespace lottery
