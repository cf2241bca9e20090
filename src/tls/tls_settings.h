// What a program needs to know to speak TLS: the mode and the files. Both
// programs read these keys (tls.*); which CA verifies the peer differs by
// role (the server's tls.client_ca, the agency's tls.server_ca), so the
// struct names it `ca`. docs/SECURITY.md explains each key.
#pragma once

#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config_loader.h"

namespace lottery {

enum class TlsMode {
  kRequired,  // mutual TLS 1.3; the default
  kOff,       // plaintext: any peer can claim any agency (logged as a WARNING)
};

const char* TlsModeName(TlsMode mode);

struct TlsSettings {
  TlsMode mode = TlsMode::kRequired;
  std::string certificate;  // PEM: this program's certificate (chain)
  std::string private_key;  // PEM: its key
  std::string ca;           // PEM: the CA that signs the peer's certificate
  std::string crl;          // PEM, optional (server): revoked agency certificates
  std::string server_name;  // agency: the name the server's certificate must carry
};

// tls.mode, with the program's variable and flag names.
Setting TlsModeSetting(std::string env, std::string flag, TlsMode* target);

// With tls.mode = required, every (key, value) in `needed` must be set; the
// error names those that are not, and how to make a set of files.
std::expected<void, ConfigError> CheckTlsFilesGiven(
    const TlsSettings& settings,
    const std::vector<std::pair<std::string_view, const std::string*>>& needed);

}  // namespace lottery
