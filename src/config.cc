#include "config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <cmath>
#include <functional>
#include <optional>
#include <toml++/toml.h>

#include <fmt/format.h>

#include "exit_codes.h"
#include "net.h"

extern char** environ;

namespace lottery {
namespace {

constexpr const char* kVersion = "0.1.0";

// Which TOML types a key accepts; every value is then checked as text, so a
// file, a variable and a flag obey exactly the same rule.
enum class Kind { kInteger, kDuration, kString };

// One configuration key: where it can come from and how to apply it.
struct Setting {
  std::string key;            // "server.port"
  std::string env;            // "SERVER_PORT", or "" when none
  std::string flag;           // "--port", or "" when none
  Kind kind;
  std::string expected;       // "an integer 1..65535": used in every error
  std::string default_text;   // for --help
  std::string help;           // one line for --help
  std::function<bool(std::string_view)> apply;  // false when the text is invalid
};

std::optional<long long> ParseInteger(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

template <typename T>
Setting Integer(std::string key, std::string env, std::string flag, T* target, long long min,
                long long max, std::string help) {
  return Setting{std::move(key), std::move(env), std::move(flag), Kind::kInteger,
                 fmt::format("an integer {}..{}", min, max), std::to_string(*target),
                 std::move(help), [target, min, max](std::string_view text) {
                   auto v = ParseInteger(text);
                   if (!v || *v < min || *v > max) return false;
                   *target = static_cast<T>(*v);
                   return true;
                 }};
}

Setting Duration(std::string key, std::string env, std::string flag, Seconds* target,
                 bool allow_zero, std::string help) {
  return Setting{std::move(key), std::move(env), std::move(flag), Kind::kDuration,
                 allow_zero ? "a duration such as 5s, 250ms or 1.5 (seconds), 0 or more"
                            : "a duration such as 5s, 250ms or 1.5 (seconds), more than 0",
                 FormatDuration(*target), std::move(help),
                 [target, allow_zero](std::string_view text) {
                   auto d = ParseDuration(text);
                   if (!d || (!allow_zero && d->count() <= 0)) return false;
                   *target = *d;
                   return true;
                 }};
}

Setting Text(std::string key, std::string env, std::string flag, std::string* target,
             std::string help) {
  return Setting{std::move(key), std::move(env), std::move(flag), Kind::kString,
                 "a non-empty string", *target, std::move(help), [target](std::string_view text) {
                   if (text.empty()) return false;
                   *target = std::string(text);
                   return true;
                 }};
}

Setting Level(std::string env, std::string flag, LogLevel* target) {
  return Setting{"log.level", std::move(env), std::move(flag), Kind::kString,
                 "one of DEBUG, INFO, WARNING, ERROR", LogLevelName(*target),
                 "lowest level written to the log", [target](std::string_view text) {
                   auto level = ParseLogLevel(text);
                   if (!level) return false;
                   *target = *level;
                   return true;
                 }};
}

std::string Describe(const Setting& s) {
  std::string where = s.env.empty() ? "" : fmt::format("  env {}", s.env);
  if (!s.flag.empty()) where += fmt::format("  flag {}", s.flag);
  return fmt::format("  {:<24} {} (default {}){}\n", s.key, s.help, s.default_text, where);
}

struct ProgramSpec {
  std::string name;         // "lottery-server"
  std::string summary;      // first line of --help
  std::string config_env;   // "SERVER_CONFIG"
  std::vector<Setting> settings;
  bool* check_only = nullptr;  // set: the program takes --check-config
};

std::string HelpText(const ProgramSpec& spec) {
  std::string text = fmt::format("usage: {} [--config FILE] [flags]\n{}\n\nflags:\n", spec.name,
                                 spec.summary);
  text += fmt::format("  {:<24} TOML file to read (env {})\n", "--config FILE", spec.config_env);
  for (const Setting& s : spec.settings) {
    if (!s.flag.empty()) text += fmt::format("  {:<24} sets {}\n", s.flag + " VALUE", s.key);
  }
  if (spec.check_only != nullptr) {
    text += fmt::format("  {:<24} validate the configuration, print it, exit 0 (valid) or 78\n",
                        "--check-config");
  }
  text += fmt::format("  {:<24} this text\n  {:<24} the version\n\n", "--help", "--version");
  text += "keys (file < environment < flags):\n";
  for (const Setting& s : spec.settings) text += Describe(s);
  text += "\nexit codes: 0 ok, 64 bad flag, 78 bad configuration";
  if (spec.check_only != nullptr) text += ", 71 cannot bind or no shared memory, 73 bets file not writable";
  text += " (see README.md)";
  return text;
}

std::unexpected<ConfigError> ConfigFail(std::string message) {
  return std::unexpected(ConfigError{ConfigErrorKind::kConfig, std::move(message)});
}

std::unexpected<ConfigError> UsageFail(std::string message) {
  return std::unexpected(ConfigError{ConfigErrorKind::kUsage, std::move(message)});
}

// Reads the TOML file and applies every key in it.
std::expected<void, ConfigError> ApplyFile(const std::string& path, ProgramSpec& spec) {
  if (::access(path.c_str(), R_OK) != 0) {
    return ConfigFail(fmt::format("config: cannot read {}: {}", path, std::strerror(errno)));
  }
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    return ConfigFail(fmt::format("config: {}:{}:{}: {}", path, e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
  for (auto&& [table_key, table_node] : root) {
    std::string table_name(table_key.str());
    const toml::table* table = table_node.as_table();
    if (table == nullptr) {
      return ConfigFail(fmt::format("config: unknown key '{}' in {} (keys live in tables such as [{}])",
                                    table_name, path, spec.settings.front().key.substr(
                                        0, spec.settings.front().key.find('.'))));
    }
    for (auto&& [key, node] : *table) {
      std::string full = table_name + "." + std::string(key.str());
      auto it = std::find_if(spec.settings.begin(), spec.settings.end(),
                             [&](const Setting& s) { return s.key == full; });
      if (it == spec.settings.end()) {
        return ConfigFail(fmt::format("config: unknown key '{}' in {}", full, path));
      }
      std::optional<std::string> text;
      switch (it->kind) {
        case Kind::kInteger:
          if (auto v = node.value_exact<std::int64_t>()) text = std::to_string(*v);
          break;
        case Kind::kDuration:
          if (auto v = node.value_exact<std::int64_t>()) text = std::to_string(*v);
          else if (auto d = node.value_exact<double>()) text = fmt::format("{}", *d);
          else if (auto s = node.value_exact<std::string>()) text = *s;
          break;
        case Kind::kString:
          if (auto s = node.value_exact<std::string>()) text = *s;
          break;
      }
      if (!text || !it->apply(*text)) {
        return ConfigFail(fmt::format("config: '{}' in {} (line {}) must be {}", full, path,
                                      node.source().begin.line, it->expected));
      }
    }
  }
  return {};
}

std::expected<void, ConfigError> Load(const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env,
                                      ProgramSpec& spec, std::string& config_file) {
  // Flags first, to find --config, --help and --version; applied last.
  std::vector<std::pair<const Setting*, std::string>> flags;
  std::optional<std::string> config_flag;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return std::unexpected(ConfigError{ConfigErrorKind::kHelp, HelpText(spec)});
    }
    if (arg == "--version") {
      return std::unexpected(
          ConfigError{ConfigErrorKind::kVersion, fmt::format("{} {}", spec.name, kVersion)});
    }
    if (arg == "--check-config" && spec.check_only != nullptr) {
      *spec.check_only = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0) return UsageFail(fmt::format("usage: unexpected argument '{}'", arg));
    std::string name = arg;
    std::optional<std::string> value;
    if (auto eq = arg.find('='); eq != std::string::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    const Setting* setting = nullptr;
    if (name != "--config") {
      for (const Setting& s : spec.settings) {
        if (!s.flag.empty() && s.flag == name) setting = &s;
      }
      if (setting == nullptr) {
        return UsageFail(fmt::format("usage: unknown flag {} (see --help)", name));
      }
    }
    if (!value) {
      if (i + 1 >= argv.size()) return UsageFail(fmt::format("usage: {} needs a value", name));
      value = argv[++i];
    }
    if (setting == nullptr) {
      config_flag = *value;
    } else {
      flags.emplace_back(setting, *value);
    }
  }

  if (config_flag) {
    config_file = *config_flag;
  } else if (auto it = env.find(spec.config_env); it != env.end() && !it->second.empty()) {
    config_file = it->second;
  }
  if (config_file.empty() && config_flag) return UsageFail("usage: --config needs a file name");
  if (!config_file.empty()) {
    if (auto applied = ApplyFile(config_file, spec); !applied) return applied;
  }

  for (const Setting& s : spec.settings) {
    if (s.env.empty()) continue;
    auto it = env.find(s.env);
    if (it == env.end() || it->second.empty()) continue;
    if (!s.apply(it->second)) {
      return ConfigFail(fmt::format("config: environment {}='{}' must be {}", s.env, it->second,
                                    s.expected));
    }
  }
  for (auto& [setting, value] : flags) {
    if (!setting->apply(value)) {
      return UsageFail(fmt::format("usage: {} needs {}, got '{}'", setting->flag, setting->expected,
                                   value));
    }
  }
  return {};
}

// The server's keys, bound to the fields of `c`.
ProgramSpec ServerSpec(ServerConfig& c) {
  ProgramSpec spec{"lottery-server", "Collects the agencies' bets and runs the lottery draw.",
                   "SERVER_CONFIG", {}, &c.check_only};
  auto& s = spec.settings;
  s.push_back(Text("server.address", "SERVER_ADDRESS", "--address", &c.address,
                   "address to listen on (0.0.0.0: every IPv4 interface, :: every interface)"));
  s.push_back(Integer("server.port", "SERVER_PORT", "--port", &c.port, 1, 65535, "TCP port"));
  s.push_back(Integer("server.listen_backlog", "SERVER_LISTEN_BACKLOG", "--listen-backlog",
                      &c.listen_backlog, 1, 65535, "pending connections the kernel queues"));
  s.push_back(Integer("server.agencies", "SERVER_AGENCIES", "--agencies", &c.agencies, 1,
                      kMaxAgencyCount, "agencies taking part; the draw waits for all of them"));
  s.push_back(Duration("server.read_timeout", "SERVER_READ_TIMEOUT", "--read-timeout",
                       &c.read_timeout, false, "drop a connection whose frame stalls this long"));
  s.push_back(Duration("server.hello_timeout", "SERVER_HELLO_TIMEOUT", "--hello-timeout",
                       &c.hello_timeout, false,
                       "drop a connection that sends nothing this long after connecting"));
  s.push_back(Duration("server.shutdown_timeout", "SERVER_SHUTDOWN_TIMEOUT", "--shutdown-timeout",
                       &c.shutdown_timeout, false,
                       "on SIGTERM, how long workers get before SIGKILL"));
  s.push_back(Integer("server.max_connections", "SERVER_MAX_CONNECTIONS", "--max-connections",
                      &c.max_connections, 0, 100000,
                      "connections served at once, 0 or >= agencies; more are refused (0: 2 x agencies + 16)"));
  s.push_back(Text("storage.path", "SERVER_STORAGE_PATH", "--storage", &c.storage_path,
                   "the bets file (docs/STORAGE.md)"));
  s.push_back(Setting{"storage.sync", "SERVER_STORAGE_SYNC", "--storage-sync", Kind::kString,
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
  s.push_back(Integer("draw.winning_number", "SERVER_WINNING_NUMBER", "--winning-number",
                      &c.winning_number, 0, 9999, "the number that wins"));
  s.push_back(Level("LOGGING_LEVEL", "--log-level", &c.log_level));
  return spec;
}

}  // namespace

std::expected<ServerConfig, ConfigError> LoadServerConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  ServerConfig c;
  ProgramSpec spec = ServerSpec(c);
  if (auto loaded = Load(argv, env, spec, c.config_file); !loaded) {
    return std::unexpected(loaded.error());
  }
  if (auto limit = CheckConnectionLimit(c); !limit) return std::unexpected(limit.error());
  return c;
}

std::expected<void, ConfigError> CheckConnectionLimit(const ServerConfig& c) {
  // Every agency keeps its connection until the draw: fewer slots than
  // agencies would deadlock the round.
  if (c.max_connections != 0 && c.max_connections < c.agencies) {
    return ConfigFail(fmt::format(
        "config: server.max_connections ({}) must be 0 or at least server.agencies ({}), since "
        "every agency stays connected until the draw",
        c.max_connections, c.agencies));
  }
  return {};
}

int ServerConfig::EffectiveMaxConnections() const {
  return max_connections > 0 ? max_connections : 2 * agencies + 16;
}

std::vector<std::pair<std::string, std::string>> ServerConfigValues(const ServerConfig& config) {
  ServerConfig copy = config;
  std::vector<std::pair<std::string, std::string>> values;
  for (const Setting& s : ServerSpec(copy).settings) values.emplace_back(s.key, s.default_text);
  return values;
}

std::expected<AgencyConfig, ConfigError> LoadAgencyConfig(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env) {
  AgencyConfig c;
  ProgramSpec spec{"lottery-agency",
                   "Sends one agency's bets to the lottery server and prints its winners.",
                   "CLI_CONFIG", {}};
  auto& s = spec.settings;
  s.push_back(Integer("agency.id", "CLI_ID", "--id", &c.id, 1, kMaxAgencyCount, "this agency's id"));
  s.push_back(Setting{"agency.mode", "CLI_MODE", "--mode", Kind::kString,
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
  s.push_back(Text("agency.dataset", "CLI_DATASET", "--dataset", &c.dataset,
                   "the agency's CSV file; {id} becomes the agency id"));
  s.push_back(Setting{"server.address", "CLI_SERVER_ADDRESS", "--server", Kind::kString,
                      "HOST:PORT with a port 1..65535", c.server_address, "the server to send to",
                      [&c](std::string_view text) {
                        if (!ParseHostPort(text)) return false;
                        c.server_address = std::string(text);
                        return true;
                      }});
  s.push_back(Duration("server.connect_timeout", "CLI_SERVER_CONNECT_TIMEOUT", "--connect-timeout",
                       &c.connect_timeout, false,
                       "keep retrying an unreachable server this long"));
  s.push_back(Duration("server.read_timeout", "CLI_SERVER_READ_TIMEOUT", "--read-timeout",
                       &c.read_timeout, false, "give up on a reply that stalls this long"));
  s.push_back(Integer("loop.amount", "CLI_LOOP_AMOUNT", "--loop-amount", &c.loop_amount, 0,
                      1000000000, "echo mode: messages to send"));
  s.push_back(Duration("loop.period", "CLI_LOOP_PERIOD", "--loop-period", &c.loop_period, true,
                       "echo mode: pause between messages"));
  s.push_back(Integer("batch.max_amount", "CLI_BATCH_MAXAMOUNT", "--batch", &c.batch_max_amount, 1,
                      8192, "most bets per batch (a batch also stays within 8 KiB)"));
  s.push_back(Integer("batch.window", "CLI_BATCH_WINDOW", "--window", &c.batch_window, 1, 1024,
                      "batches sent ahead of their acks (1: wait for each ack)"));
  s.push_back(Level("CLI_LOG_LEVEL", "--log-level", &c.log_level));
  if (auto loaded = Load(argv, env, spec, c.config_file); !loaded) {
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

std::map<std::string, std::string> CurrentEnvironment() {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    env.emplace(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return env;
}

std::optional<Seconds> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  // A plain number is seconds.
  {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size()) {
      if (!std::isfinite(value) || value < 0) return std::nullopt;
      return Seconds(value);
    }
  }
  // Go style: one or more <number><unit>, units h, m, s, ms, us, ns.
  double total = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    double value = 0;
    auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), value);
    if (ec != std::errc() || !std::isfinite(value) || value < 0) return std::nullopt;
    pos = static_cast<std::size_t>(end - text.data());
    std::size_t unit_end = pos;
    while (unit_end < text.size() && std::isalpha(static_cast<unsigned char>(text[unit_end]))) {
      ++unit_end;
    }
    std::string_view unit = text.substr(pos, unit_end - pos);
    double scale;
    if (unit == "h") scale = 3600;
    else if (unit == "m") scale = 60;
    else if (unit == "s") scale = 1;
    else if (unit == "ms") scale = 1e-3;
    else if (unit == "us" || unit == "µs") scale = 1e-6;
    else if (unit == "ns") scale = 1e-9;
    else return std::nullopt;
    total += value * scale;
    pos = unit_end;
  }
  return Seconds(total);
}

std::string FormatDuration(Seconds d) {
  double s = d.count();
  if (s > 0 && s < 1) return fmt::format("{}ms", std::round(s * 1e6) / 1e3);
  return fmt::format("{}s", s);
}

int ReportConfigError(const ConfigError& error) {
  switch (error.kind) {
    case ConfigErrorKind::kHelp:
    case ConfigErrorKind::kVersion:
      std::fputs(error.message.c_str(), stdout);
      std::fputs("\n", stdout);
      return kExitOk;
    case ConfigErrorKind::kUsage:
      Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", error.message);
      return kExitUsage;
    case ConfigErrorKind::kConfig:
      break;
  }
  Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", error.message);
  return kExitConfig;
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
