#include "common/config_loader.h"

#include <unistd.h>

#include <toml++/toml.h>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <optional>

#include <fmt/format.h>

#include "common/exit_codes.h"

extern char** environ;

namespace lottery {

// The project version from meson.build (one place to bump).
constexpr const char* kVersion = LOTTERY_VERSION;

std::optional<bool> ParseBoolean(std::string_view text) {
  if (text == "true" || text == "yes" || text == "1") return true;
  if (text == "false" || text == "no" || text == "0") return false;
  return std::nullopt;
}

Setting BooleanSetting(std::string key, std::string env, std::string flag, bool* target,
                       std::string help) {
  return Setting{std::move(key),
                 std::move(env),
                 std::move(flag),
                 SettingKind::kBoolean,
                 "true or false",
                 *target ? "true" : "false",
                 std::move(help),
                 [target](std::string_view text) {
                   auto v = ParseBoolean(text);
                   if (v) *target = *v;
                   return v.has_value();
                 }};
}

std::optional<long long> ParseInteger(std::string_view text) {
  long long value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

Setting DurationSetting(std::string key, std::string env, std::string flag, Seconds* target,
                        ZeroDuration zero, std::string help) {
  const bool allow_zero = zero == ZeroDuration::kAllowed;
  return Setting{std::move(key),
                 std::move(env),
                 std::move(flag),
                 SettingKind::kDuration,
                 allow_zero ? "a duration such as 5s, 250ms or 1.5 (seconds), 0 or more"
                            : "a duration such as 5s, 250ms or 1.5 (seconds), more than 0",
                 FormatDuration(*target),
                 std::move(help),
                 [target, allow_zero](std::string_view text) {
                   auto d = ParseDuration(text);
                   if (!d || (!allow_zero && d->count() <= 0)) return false;
                   *target = *d;
                   return true;
                 }};
}

Setting TextSetting(std::string key, std::string env, std::string flag, std::string* target,
                    std::string help) {
  return Setting{std::move(key),
                 std::move(env),
                 std::move(flag),
                 SettingKind::kString,
                 "a non-empty string",
                 *target,
                 std::move(help),
                 [target](std::string_view text) {
                   if (text.empty()) return false;
                   *target = std::string(text);
                   return true;
                 }};
}

Setting LogLevelSetting(std::string env, std::string flag, LogLevel* target) {
  return Setting{"log.level",
                 std::move(env),
                 std::move(flag),
                 SettingKind::kString,
                 "one of DEBUG, INFO, WARNING, ERROR",
                 LogLevelName(*target),
                 "lowest level written to the log",
                 [target](std::string_view text) {
                   auto level = ParseLogLevel(text);
                   if (!level) return false;
                   *target = *level;
                   return true;
                 }};
}

namespace {

std::string Describe(const Setting& s) {
  std::string where = s.env.empty() ? "" : fmt::format("  env {}", s.env);
  if (!s.flag.empty()) where += fmt::format("  flag {}", s.flag);
  const std::string value = s.default_text.empty() ? "none" : s.default_text;
  return fmt::format("  {:<24} {} (default {}){}\n", s.key, s.help, value, where);
}

std::string HelpText(const ProgramSpec& spec) {
  std::string text =
      fmt::format("usage: {} [--config FILE] [flags]\n{}\n\nflags:\n", spec.name, spec.summary);
  text += fmt::format("  {:<24} TOML file to read (env {})\n", "--config FILE", spec.config_env);
  for (const Setting& s : spec.settings) {
    if (!s.flag.empty())
      text += fmt::format("  {:<24} sets {}\n", s.flag + " " + s.flag_value, s.key);
  }
  if (spec.check_only != nullptr) {
    text += fmt::format("  {:<24} validate the configuration, print it, exit 0 (valid) or 78\n",
                        "--check-config");
  }
  text += fmt::format("  {:<24} this text\n  {:<24} the version\n\n", "--help", "--version");
  text += "keys (file < environment < flags):\n";
  for (const Setting& s : spec.settings) text += Describe(s);
  text += fmt::format("\nexit codes: {} (see README.md)", spec.exit_codes);
  return text;
}

}  // namespace

std::unexpected<ConfigError> ConfigFail(std::string message) {
  return std::unexpected(ConfigError{ConfigErrorKind::kConfig, std::move(message)});
}

std::unexpected<ConfigError> UsageFail(std::string message) {
  return std::unexpected(ConfigError{ConfigErrorKind::kUsage, std::move(message)});
}

namespace {

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
      return ConfigFail(fmt::format(
          "config: unknown key '{}' in {} (keys live in tables such as [{}])", table_name, path,
          spec.settings.front().key.substr(0, spec.settings.front().key.find('.'))));
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
        case SettingKind::kInteger:
          if (auto v = node.value_exact<std::int64_t>()) text = std::to_string(*v);
          break;
        case SettingKind::kDuration:
          if (auto v = node.value_exact<std::int64_t>()) text = std::to_string(*v);
          else if (auto d = node.value_exact<double>()) text = fmt::format("{}", *d);
          else if (auto s = node.value_exact<std::string>()) text = *s;
          break;
        case SettingKind::kString:
          if (auto s = node.value_exact<std::string>()) text = *s;
          break;
        case SettingKind::kIntegerOrWord:
          if (auto v = node.value_exact<std::int64_t>()) text = std::to_string(*v);
          else if (auto s = node.value_exact<std::string>()) text = *s;
          break;
        case SettingKind::kBoolean:
          if (auto b = node.value_exact<bool>()) text = *b ? "true" : "false";
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

}  // namespace

std::expected<ConfigRequest, ConfigError> LoadSettings(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
    ProgramSpec& spec, std::string& config_file) {
  // Flags first, to find --config, --help and --version; applied last.
  std::vector<std::pair<const Setting*, std::string>> flags;
  std::optional<std::string> config_flag;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      return ConfigRequest{ConfigAction::kHelp, HelpText(spec)};
    }
    if (arg == "--version") {
      return ConfigRequest{ConfigAction::kVersion, fmt::format("{} {}", spec.name, kVersion)};
    }
    if (arg == "--check-config" && spec.check_only != nullptr) {
      *spec.check_only = true;
      continue;
    }
    if (arg.rfind("--", 0) != 0)
      return UsageFail(fmt::format("usage: unexpected argument '{}'", arg));
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
    if (!value && setting != nullptr && setting->kind == SettingKind::kBoolean &&
        (i + 1 >= argv.size() || argv[i + 1].rfind("--", 0) == 0 || !ParseBoolean(argv[i + 1]))) {
      value = "true";  // a bare boolean flag
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
    if (auto applied = ApplyFile(config_file, spec); !applied) {
      return std::unexpected(applied.error());
    }
  }

  for (const Setting& s : spec.settings) {
    if (s.env.empty()) continue;
    auto it = env.find(s.env);
    if (it == env.end() || it->second.empty()) continue;
    if (!s.apply(it->second)) {
      return ConfigFail(
          fmt::format("config: environment {}='{}' must be {}", s.env, it->second, s.expected));
    }
  }
  for (auto& [setting, value] : flags) {
    if (!setting->apply(value)) {
      return UsageFail(
          fmt::format("usage: {} needs {}, got '{}'", setting->flag, setting->expected, value));
    }
  }
  return ConfigRequest{};
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

int AnswerConfigRequest(const ConfigRequest& request) {
  std::fputs(request.text.c_str(), stdout);
  std::fputs("\n", stdout);
  return kExitOk;
}

int ReportConfigError(const ConfigError& error) {
  switch (error.kind) {
    case ConfigErrorKind::kUsage:
      Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", error.message);
      return kExitUsage;
    case ConfigErrorKind::kConfig: break;
  }
  Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", error.message);
  return kExitConfig;
}

}  // namespace lottery
