// Effective configuration of the server and of an agency.
//
// Precedence, lowest first: built-in defaults < TOML file < environment <
// command-line flags. Every key is documented in conf/server.toml and
// conf/client.toml with its default. Loading never exits the process: it
// returns a ConfigError whose kind tells the caller which exit code to use
// (EX_USAGE for flags, EX_CONFIG for files and environment).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string_view>
#include <string>
#include <vector>

#include "log.h"
#include "status.h"
#include "sync_mode.h"

namespace lottery {

using Seconds = std::chrono::duration<double>;

inline constexpr int kMaxAgencyCount = 1000;  // agencies in one round, ids 1..1000

enum class ConfigErrorKind {
  kUsage,   // bad command-line flag: exit 64 (EX_USAGE)
  kConfig,  // bad file, key, type, value or environment variable: exit 78 (EX_CONFIG)
  kHelp,    // --help was given: print `message` to stdout, exit 0
  kVersion, // --version was given: print `message` to stdout, exit 0
};

struct ConfigError {
  ConfigErrorKind kind;
  std::string message;  // one line naming the key and the file/variable/flag
};

struct ServerConfig {
  std::string config_file;            // "" when no file was read
  std::string address = "0.0.0.0";    // server.address        SERVER_ADDRESS   --address
  std::uint16_t port = 12345;         // server.port           SERVER_PORT      --port
  int listen_backlog = 1024;          // server.listen_backlog SERVER_LISTEN_BACKLOG
  int agencies = 5;                   // server.agencies       SERVER_AGENCIES  --agencies
  Seconds read_timeout{60.0};         // server.read_timeout   SERVER_READ_TIMEOUT
  Seconds hello_timeout{10.0};        // server.hello_timeout  SERVER_HELLO_TIMEOUT
  Seconds shutdown_timeout{5.0};      // server.shutdown_timeout SERVER_SHUTDOWN_TIMEOUT
  int max_connections = 0;            // server.max_connections SERVER_MAX_CONNECTIONS (0: auto)
  std::string storage_path = "bets.csv";  // storage.path    SERVER_STORAGE_PATH --storage
  SyncMode storage_sync = SyncMode::kAlways;  // storage.sync SERVER_STORAGE_SYNC --storage-sync
  std::uint32_t winning_number = 7574;    // draw.winning_number SERVER_WINNING_NUMBER
  LogLevel log_level = LogLevel::kInfo;   // log.level       LOGGING_LEVEL    --log-level
  bool check_only = false;                // --check-config: validate and exit

  // Connections served at once: max_connections, or when 0, twice the
  // agencies plus room for health checks and reconnects.
  int EffectiveMaxConnections() const;
};

enum class AgencyMode { kLottery, kEcho, kBet };

struct AgencyConfig {
  std::string config_file;
  std::uint32_t id = 1;                        // agency.id        CLI_ID            --id
  AgencyMode mode = AgencyMode::kLottery;      // agency.mode      CLI_MODE          --mode
  std::string dataset = "dataset/agency-{id}.csv";  // agency.dataset CLI_DATASET    --dataset
  std::string server_address = "127.0.0.1:12345";   // server.address CLI_SERVER_ADDRESS --server
  Seconds connect_timeout{30.0};               // server.connect_timeout CLI_SERVER_CONNECT_TIMEOUT
  Seconds read_timeout{60.0};                  // server.read_timeout CLI_SERVER_READ_TIMEOUT
  int loop_amount = 5;                         // loop.amount      CLI_LOOP_AMOUNT
  Seconds loop_period{1.0};                    // loop.period      CLI_LOOP_PERIOD
  int batch_max_amount = 100;                  // batch.max_amount CLI_BATCH_MAXAMOUNT --batch
  int batch_window = 16;                       // batch.window     CLI_BATCH_WINDOW  --window
  LogLevel log_level = LogLevel::kInfo;        // log.level        CLI_LOG_LEVEL     --log-level

  // The dataset path with "{id}" replaced by the agency id.
  std::string DatasetPath() const;
};

// argv excludes nothing: argv[0] is the program name. env is the process
// environment as NAME -> value (tests pass their own).
std::expected<ServerConfig, ConfigError> LoadServerConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);
std::expected<AgencyConfig, ConfigError> LoadAgencyConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);

// The rules between keys: server.max_connections is 0 or at least
// server.agencies. LoadServerConfig applies it; a reload checks it again
// against the running agencies.
std::expected<void, ConfigError> CheckConnectionLimit(const ServerConfig& config);

// Every key of a server configuration with its value as text, in --help
// order ("server.port" -> "12345"). Used to report what a reload changed.
std::vector<std::pair<std::string, std::string>> ServerConfigValues(const ServerConfig& config);

// The current process environment as a map.
std::map<std::string, std::string> CurrentEnvironment();

// Durations in files, variables and flags: a number of seconds (5, 0.25) or
// a number with a unit: "250ms", "5s", "1m", "1m30s" (Go style, as the
// exercise's client uses). Returns std::nullopt when it does not parse or is
// negative.
std::optional<Seconds> ParseDuration(std::string_view text);

// Formats a duration the way ParseDuration reads it back: "5s", "250ms", "1.5s".
std::string FormatDuration(Seconds d);

const char* AgencyModeName(AgencyMode mode);

// What main() does with a ConfigError: prints --help/--version to stdout, or
// logs the one-line error; returns the exit code (0, 64 or 78).
int ReportConfigError(const ConfigError& error);

}  // namespace lottery
