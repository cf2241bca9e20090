#include "agency/agency_config.h"

#include <fmt/format.h>

#include "common/agency_limit.h"
#include "common/net.h"

namespace lottery {

std::expected<AgencyConfig, ConfigError> LoadAgencyConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  AgencyConfig c;
  ProgramSpec spec{"lottery-agency",
                   "Sends one agency's bets to the lottery server and prints its winners.",
                   "CLI_CONFIG", {}, nullptr,
                   "0 ok, 64 bad flag, 65 bets rejected, 66 dataset unreadable, 67 agency id not "
                   "served by the server, 69 server unreachable, 75 agency id kept by another "
                   "connection, 76 the server broke the protocol, 77 betting closed, 78 bad "
                   "configuration"};
  auto& s = spec.settings;
  s.push_back(IntegerSetting("agency.id", "CLI_ID", "--id", &c.id, 1, kMaxAgencies, "this agency's id"));
  s.push_back(Setting{"agency.mode", "CLI_MODE", "--mode", SettingKind::kString,
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
                      "HOST:PORT with a port 1..65535", c.server_address, "the server to send to",
                      [&c](std::string_view text) {
                        if (!ParseHostPort(text)) return false;
                        c.server_address = std::string(text);
                        return true;
                      }});
  s.push_back(DurationSetting("server.connect_timeout", "CLI_SERVER_CONNECT_TIMEOUT", "--connect-timeout",
                       &c.connect_timeout, false,
                       "keep retrying an unreachable server this long"));
  s.push_back(DurationSetting("server.read_timeout", "CLI_SERVER_READ_TIMEOUT", "--read-timeout",
                       &c.read_timeout, false, "give up on a reply that stalls this long"));
  s.push_back(IntegerSetting("loop.amount", "CLI_LOOP_AMOUNT", "--loop-amount", &c.loop_amount, 0,
                      1000000000, "echo mode: messages to send"));
  s.push_back(DurationSetting("loop.period", "CLI_LOOP_PERIOD", "--loop-period", &c.loop_period, true,
                       "echo mode: pause between messages"));
  s.push_back(IntegerSetting("batch.max_amount", "CLI_BATCH_MAXAMOUNT", "--batch", &c.batch_max_amount, 1,
                      8192, "most bets per batch (a batch also stays within 8 KiB)"));
  s.push_back(IntegerSetting("batch.window", "CLI_BATCH_WINDOW", "--window", &c.batch_window, 1, 1024,
                      "batches sent ahead of their acks (1: wait for each ack)"));
  s.push_back(LogLevelSetting("CLI_LOG_LEVEL", "--log-level", &c.log_level));
  if (auto loaded = LoadSettings(argv, env, spec, c.config_file); !loaded) {
    return std::unexpected(loaded.error());
  }
  return c;
}

std::string AgencyConfig::DatasetPath() const {
  std::string path = dataset;
  const std::string token = "{id}";
  for (auto at = path.find(token); at != std::string::npos; at = path.find(token, at)) {
    std::string id_text = std::to_string(id);
    path.replace(at, token.size(), id_text);
    at += id_text.size();
  }
  return path;
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
