#include "tls/tls_settings.h"

#include <fmt/format.h>

namespace lottery {

const char* TlsModeName(TlsMode mode) { return mode == TlsMode::kOff ? "off" : "required"; }

Setting TlsModeSetting(std::string env, std::string flag, TlsMode* target) {
  return Setting{"tls.mode",
                 std::move(env),
                 std::move(flag),
                 SettingKind::kString,
                 "one of required, off",
                 TlsModeName(*target),
                 "required: mutual TLS 1.3, each agency proves its id with its certificate; off: "
                 "plaintext, any peer can claim any agency",
                 [target](std::string_view text) {
                   for (TlsMode m : {TlsMode::kRequired, TlsMode::kOff}) {
                     if (text == TlsModeName(m)) {
                       *target = m;
                       return true;
                     }
                   }
                   return false;
                 }};
}

std::expected<void, ConfigError> CheckTlsFilesGiven(
    const TlsSettings& settings,
    const std::vector<std::pair<std::string_view, const std::string*>>& needed) {
  if (settings.mode == TlsMode::kOff) return {};
  std::vector<std::string_view> missing;
  for (const auto& [key, value] : needed) {
    if (value->empty()) missing.push_back(key);
  }
  if (missing.empty()) return {};
  return ConfigFail(fmt::format(
      "config: tls.mode is required (the default) but {} {} not set; set {} (python3 "
      "tools/gen_certs.py DIR --agencies N makes a CA, the server's and each agency's files), "
      "or set tls.mode = \"off\" to run without authentication",
      fmt::join(missing, ", "), missing.size() == 1 ? "is" : "are",
      missing.size() == 1 ? "it" : "them"));
}

}  // namespace lottery
