// The agency's configuration keys (conf/client.toml documents each one with
// its default). Loading goes through the generic loader
// (common/config_loader.h): defaults < file < environment < flags.
#pragma once

#include <cstdint>
#include <expected>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_loader.h"
#include "common/log.h"
#include "common/net.h"
#include "common/status.h"
#include "tls/tls_settings.h"
#include "wire/protocol.h"

namespace lottery {

enum class AgencyMode { kLottery, kEcho, kBet };
// log.progress: the live progress line (agency/progress_line.h).
enum class ProgressMode { kAuto, kAlways, kNever };

struct AgencyConfig {
  std::string config_file;
  // kRun, or --help / --version: main() answers it (AnswerConfigRequest) and
  // exits; nothing else is loaded or checked then.
  ConfigRequest request;
  std::uint32_t id = 1;                             // agency.id        CLI_ID            --id
  AgencyMode mode = AgencyMode::kLottery;           // agency.mode      CLI_MODE          --mode
  std::string dataset = "dataset/agency-{id}.csv";  // agency.dataset CLI_DATASET    --dataset
  // One HOST:PORT or several separated by commas: the servers the agency
  // tries in turn (ServerAddresses()).
  std::string server_address = "127.0.0.1:12345";  // server.address CLI_SERVER_ADDRESS --server
  Seconds connect_timeout{30.0};                // server.connect_timeout CLI_SERVER_CONNECT_TIMEOUT
  Seconds read_timeout{60.0};                   // server.read_timeout CLI_SERVER_READ_TIMEOUT
  int loop_amount = 5;                          // loop.amount      CLI_LOOP_AMOUNT
  Seconds loop_period{1.0};                     // loop.period      CLI_LOOP_PERIOD
  int batch_max_amount = 100;                   // batch.max_amount CLI_BATCH_MAXAMOUNT --batch
  int batch_window = kDefaultBatchWindow;       // batch.window     CLI_BATCH_WINDOW  --window
  LogLevel log_level = LogLevel::kInfo;         // log.level        CLI_LOG_LEVEL     --log-level
  ProgressMode progress = ProgressMode::kAuto;  // log.progress    CLI_PROGRESS      --progress
  // tls.mode, tls.certificate, tls.private_key, tls.server_ca (in tls.ca),
  // tls.server_name: CLI_TLS_* and --tls-* (docs/SECURITY.md).
  TlsSettings tls;

  // The dataset path with "{id}" replaced by the agency id.
  std::string DatasetPath() const;
  // The addresses of server.address, in order (it was checked at load).
  std::vector<HostPort> ServerAddresses() const;
  // The name the certificate of the server at `endpoint` must carry:
  // tls.server_name, or the host of `endpoint`.
  std::string ServerNameFor(const HostPort& endpoint) const;
  // What the start-up log shows: tls.server_name, or the host of each
  // address of server.address, separated by commas.
  std::string ServerName() const;
};

// server.address: one or more HOST:PORT separated by commas, spaces around
// the commas allowed ("[::1]:12345" for IPv6). Fails (kConfig) naming the
// first element that is empty or no HOST:PORT.
Result<std::vector<HostPort>> ParseServerAddresses(std::string_view text);

// argv[0] is the program name. env is the process environment as NAME ->
// value (tests pass their own).
std::expected<AgencyConfig, ConfigError> LoadAgencyConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env);

const char* AgencyModeName(AgencyMode mode);
const char* ProgressModeName(ProgressMode mode);

// `path` with every "{id}" replaced by `id`.
std::string ReplaceIdToken(std::string path, std::uint32_t id);

}  // namespace lottery
