#include "agency/agency_config.h"

#include <fmt/format.h>

#include <algorithm>

#include "common/agency_limit.h"
#include "common/net.h"

namespace lottery {

std::expected<AgencyConfig, ConfigError> LoadAgencyConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  AgencyConfig c;
  ProgramSpec spec{"lottery-agency",
                   "Sends one agency's bets to the lottery server and prints its winners.",
                   "CLI_CONFIG",
                   {},
                   nullptr,
                   "0 ok, 64 bad flag, 65 bets rejected, 66 dataset unreadable, 67 agency id not "
                   "served by the server, 69 server unreachable, 75 agency id kept by another "
                   "connection, 76 the server broke the protocol, 77 betting closed or certificate "
                   "refused, 78 bad configuration"};
  auto& s = spec.settings;
  s.push_back(
      IntegerSetting("agency.id", "CLI_ID", "--id", &c.id, 1, kMaxAgencies, "this agency's id"));
  s.push_back(
      Setting{"agency.mode", "CLI_MODE", "--mode", SettingKind::kString,
              "one of lottery, echo, bet", AgencyModeName(c.mode),
              "lottery: send the dataset; echo: echo loop; bet: one bet from NOMBRE, "
              "APELLIDO, DOCUMENTO, NACIMIENTO, NUMERO",
              [&c](std::string_view text) {
                for (AgencyMode m : {AgencyMode::kLottery, AgencyMode::kEcho, AgencyMode::kBet}) {
                  if (text == AgencyModeName(m)) {
                    c.mode = m;
                    return true;
                  }
                }
                return false;
              }});
  s.push_back(TextSetting("agency.dataset", "CLI_DATASET", "--dataset", &c.dataset,
                          "the agency's CSV file; {id} becomes the agency id"));
  s.push_back(Setting{"server.address", "CLI_SERVER_ADDRESS", "--server", SettingKind::kString,
                      "HOST:PORT, or several separated by commas (HOST:PORT,HOST:PORT), each with "
                      "a port 1..65535",
                      c.server_address,
                      "the server to send to; several: tried in turn when one fails",
                      [&c](std::string_view text) {
                        if (!ParseServerAddresses(text)) return false;
                        c.server_address = std::string(text);
                        return true;
                      }});
  s.push_back(DurationSetting("server.connect_timeout", "CLI_SERVER_CONNECT_TIMEOUT",
                              "--connect-timeout", &c.connect_timeout, ZeroDuration::kRefused,
                              "keep retrying an unreachable server this long"));
  s.push_back(DurationSetting("server.read_timeout", "CLI_SERVER_READ_TIMEOUT", "--read-timeout",
                              &c.read_timeout, ZeroDuration::kRefused,
                              "give up on a reply that stalls this long"));
  s.push_back(IntegerSetting("loop.amount", "CLI_LOOP_AMOUNT", "--loop-amount", &c.loop_amount, 0,
                             1000000000, "echo mode: messages to send"));
  s.push_back(DurationSetting("loop.period", "CLI_LOOP_PERIOD", "--loop-period", &c.loop_period,
                              ZeroDuration::kAllowed, "echo mode: pause between messages"));
  s.push_back(IntegerSetting("batch.max_amount", "CLI_BATCH_MAXAMOUNT", "--batch",
                             &c.batch_max_amount, 1, 8192,
                             "most bets per batch (a batch also stays within 8 KiB)"));
  s.push_back(IntegerSetting("batch.window", "CLI_BATCH_WINDOW", "--window", &c.batch_window, 1,
                             1024, "batches sent ahead of their acks (1: wait for each ack)"));
  s.push_back(LogLevelSetting("CLI_LOG_LEVEL", "--log-level", &c.log_level));
  s.push_back(Setting{
      "log.progress", "CLI_PROGRESS", "--progress", SettingKind::kString,
      "one of auto, always, never", ProgressModeName(c.progress),
      "a live progress line on stderr: auto when it is a terminal (a bare "
      "--progress is always)",
      [&c](std::string_view text) {
        for (ProgressMode m : {ProgressMode::kAuto, ProgressMode::kAlways, ProgressMode::kNever}) {
          if (text == ProgressModeName(m)) {
            c.progress = m;
            return true;
          }
        }
        return false;
      }});
  s.back().flag_value = "[VALUE]";  // a bare --progress is always
  s.push_back(TlsModeSetting("CLI_TLS_MODE", "--tls-mode", &c.tls.mode));
  s.push_back(TextSetting("tls.certificate", "CLI_TLS_CERTIFICATE", "--tls-cert",
                          &c.tls.certificate,
                          "PEM file: this agency's certificate ({id} becomes the agency id)"));
  s.push_back(TextSetting("tls.private_key", "CLI_TLS_PRIVATE_KEY", "--tls-key", &c.tls.private_key,
                          "PEM file: this agency's private key ({id} becomes the agency id)"));
  s.push_back(TextSetting("tls.server_ca", "CLI_TLS_SERVER_CA", "--tls-server-ca", &c.tls.ca,
                          "PEM file: the CA that signs the server's certificate"));
  s.push_back(TextSetting("tls.server_name", "CLI_TLS_SERVER_NAME", "--tls-server-name",
                          &c.tls.server_name,
                          "the name (or IP) the server's certificate must carry"));
  s.back().default_text = "the host of server.address";
  // A bare --progress (no value after it) means "always".
  std::vector<std::string> args = argv;
  for (std::size_t i = 1; i < args.size(); ++i) {
    if (args[i] == "--progress" && (i + 1 == args.size() || args[i + 1].starts_with("--"))) {
      args[i] = "--progress=always";
    }
  }
  auto loaded = LoadSettings(args, env, spec, c.config_file);
  if (!loaded) return std::unexpected(loaded.error());
  if (loaded->action != ConfigAction::kRun) {
    c.request = std::move(*loaded);
    return c;
  }
  if (auto files = CheckTlsFilesGiven(c.tls, {{"tls.certificate", &c.tls.certificate},
                                              {"tls.private_key", &c.tls.private_key},
                                              {"tls.server_ca", &c.tls.ca}});
      !files) {
    return std::unexpected(files.error());
  }
  // One configuration serves every agency: "{id}" in the file names.
  c.tls.certificate = ReplaceIdToken(c.tls.certificate, c.id);
  c.tls.private_key = ReplaceIdToken(c.tls.private_key, c.id);
  return c;
}

std::string ReplaceIdToken(std::string path, std::uint32_t id) {
  const std::string token = "{id}";
  const std::string id_text = std::to_string(id);
  for (auto at = path.find(token); at != std::string::npos; at = path.find(token, at)) {
    path.replace(at, token.size(), id_text);
    at += id_text.size();
  }
  return path;
}

std::string AgencyConfig::DatasetPath() const { return ReplaceIdToken(dataset, id); }

namespace {

std::string_view Trim(std::string_view text) {
  const auto first = text.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t") - first + 1);
}

}  // namespace

Result<std::vector<HostPort>> ParseServerAddresses(std::string_view text) {
  std::vector<HostPort> out;
  std::size_t position = 1;
  while (true) {
    const auto comma = text.find(',');
    const std::string_view element = Trim(text.substr(0, comma));
    if (element.empty()) {
      return Fail(ErrorKind::kConfig,
                  fmt::format("address {} of '{}' is empty", position, LogSafe(text)));
    }
    auto endpoint = ParseHostPort(element);
    if (!endpoint) {
      return Fail(ErrorKind::kConfig,
                  fmt::format("address {}: {}", position, LogSafe(endpoint.error().message)));
    }
    out.push_back(std::move(*endpoint));
    if (comma == std::string_view::npos) return out;
    text.remove_prefix(comma + 1);
    ++position;
  }
}

std::vector<HostPort> AgencyConfig::ServerAddresses() const {
  auto parsed = ParseServerAddresses(server_address);
  return parsed ? std::move(*parsed) : std::vector<HostPort>{};
}

std::string AgencyConfig::ServerNameFor(const HostPort& endpoint) const {
  return tls.server_name.empty() ? endpoint.host : tls.server_name;
}

std::string AgencyConfig::ServerName() const {
  if (!tls.server_name.empty()) return tls.server_name;
  std::string names;
  std::vector<std::string> seen;
  for (const HostPort& endpoint : ServerAddresses()) {
    if (std::find(seen.begin(), seen.end(), endpoint.host) != seen.end()) continue;
    names += (seen.empty() ? "" : ",") + endpoint.host;
    seen.push_back(endpoint.host);
  }
  return names;
}

const char* ProgressModeName(ProgressMode mode) {
  switch (mode) {
    case ProgressMode::kAuto: return "auto";
    case ProgressMode::kAlways: return "always";
    case ProgressMode::kNever: return "never";
  }
  return "auto";
}

const char* AgencyModeName(AgencyMode mode) {
  switch (mode) {
    case AgencyMode::kLottery: return "lottery";
    case AgencyMode::kEcho: return "echo";
    case AgencyMode::kBet: return "bet";
  }
  return "lottery";
}

}  // namespace lottery
