// The generic configuration loader both programs use. A program describes
// its keys as Settings bound to the fields of its own config struct; the
// loader applies them with one precedence, lowest first: built-in defaults <
// TOML file < environment < command-line flags, and writes the --help text.
// It never exits the process: it returns a ConfigError whose kind tells the
// caller which exit code to use (EX_USAGE for flags, EX_CONFIG for files and
// environment), or a ConfigRequest: run, or answer --help / --version. The programs' keys live with
// the programs (server/server_config.h, agency/agency_config.h).
#pragma once

#include <chrono>
#include <cstdint>
#include <expected>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "common/log.h"

namespace lottery {

using Seconds = std::chrono::duration<double>;

enum class ConfigErrorKind {
  kUsage,   // bad command-line flag: exit 64 (EX_USAGE)
  kConfig,  // bad file, key, type, value or environment variable: exit 78 (EX_CONFIG)
};

struct ConfigError {
  ConfigErrorKind kind;
  std::string message;  // one line naming the key and the file/variable/flag
};

// What a command line asks of a program, when it is no error: to run with
// the settings applied, or only to print its --help or --version `text` to
// stdout and exit 0 (AnswerConfigRequest), nothing else read or checked.
enum class ConfigAction { kRun, kHelp, kVersion };
struct ConfigRequest {
  ConfigAction action = ConfigAction::kRun;
  std::string text;  // kHelp, kVersion: what to print
};

// Which TOML types a key accepts; every value is then checked as text, so a
// file, a variable and a flag obey exactly the same rule.
// kBoolean: true/false in TOML; "true", "false", "yes", "no", "1", "0" as
// text; a bare flag (no value after it) means true.
enum class SettingKind { kInteger, kDuration, kString, kIntegerOrWord, kBoolean };

// One configuration key: where it can come from and how to apply it. `apply`
// writes into the program's config struct, which must outlive the Setting.
struct Setting {
  std::string key;   // "server.port"
  std::string env;   // "SERVER_PORT", or "" when none
  std::string flag;  // "--port", or "" when none
  SettingKind kind;
  std::string expected;      // "an integer 1..65535": used in every error
  std::string default_text;  // for --help (and, after loading, the value as text)
  std::string help;          // one line for --help
  std::function<bool(std::string_view)> apply;  // false when the text is invalid
  std::string flag_value = "VALUE";  // how --help shows the flag's value ("[VALUE]": optional)
};

// One program's keys and the words of its --help.
struct ProgramSpec {
  std::string name;        // "lottery-server"
  std::string summary;     // first line of --help
  std::string config_env;  // "SERVER_CONFIG"
  std::vector<Setting> settings;
  bool* check_only = nullptr;  // set: the program takes --check-config
  // The last line of --help: "0 ok, 64 bad flag, ..." (README.md explains each).
  std::string exit_codes = "0 ok, 64 bad flag, 78 bad configuration";
};

// Applies the file named by --config (or `spec.config_env`), the
// environment and the flags of `argv` (argv[0] is the program name) to the
// settings of `spec`; `config_file` receives the file read ("" for none).
// A --help or --version flag ends the scan of the flags there: the request
// says which, and nothing is applied.
std::expected<ConfigRequest, ConfigError> LoadSettings(
    const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
    ProgramSpec& spec, std::string& config_file);

// Builders for the usual kinds of key.
std::optional<long long> ParseInteger(std::string_view text);

template <typename T>
Setting IntegerSetting(std::string key, std::string env, std::string flag, T* target, long long min,
                       long long max, std::string help) {
  return Setting{std::move(key),
                 std::move(env),
                 std::move(flag),
                 SettingKind::kInteger,
                 fmt::format("an integer {}..{}", min, max),
                 std::to_string(*target),
                 std::move(help),
                 [target, min, max](std::string_view text) {
                   auto v = ParseInteger(text);
                   if (!v || *v < min || *v > max) return false;
                   *target = static_cast<T>(*v);
                   return true;
                 }};
}
// "true", "yes", "1" / "false", "no", "0"; std::nullopt otherwise.
std::optional<bool> ParseBoolean(std::string_view text);
Setting BooleanSetting(std::string key, std::string env, std::string flag, bool* target,
                       std::string help);
// Whether a duration key takes 0 ("none", "no pause") or only more than 0.
enum class ZeroDuration { kRefused, kAllowed };
Setting DurationSetting(std::string key, std::string env, std::string flag, Seconds* target,
                        ZeroDuration zero, std::string help);
Setting TextSetting(std::string key, std::string env, std::string flag, std::string* target,
                    std::string help);
// log.level, with the program's variable and flag names.
Setting LogLevelSetting(std::string env, std::string flag, LogLevel* target);

// A ConfigError of kind kConfig / kUsage, for a program's own checks.
std::unexpected<ConfigError> ConfigFail(std::string message);
std::unexpected<ConfigError> UsageFail(std::string message);

// The current process environment as a map.
std::map<std::string, std::string> CurrentEnvironment();

// Durations in files, variables and flags: a number of seconds (5, 0.25) or
// a number with a unit: "250ms", "5s", "1m", "1m30s" (Go style, as the
// exercise's client uses). Returns std::nullopt when it does not parse or is
// negative.
std::optional<Seconds> ParseDuration(std::string_view text);

// Formats a duration the way ParseDuration reads it back: "5s", "250ms", "1.5s".
std::string FormatDuration(Seconds d);

// What main() does with a ConfigError: logs the one-line error; returns the
// exit code (64 or 78).
int ReportConfigError(const ConfigError& error);

// What main() does with a kHelp or kVersion request: prints its text to
// stdout; returns the exit code (0).
int AnswerConfigRequest(const ConfigRequest& request);

}  // namespace lottery
