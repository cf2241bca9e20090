// The parent's TLS context, built from the tls.* keys at start and again on
// each SIGHUP (certificate rotation, a new revocation list). The parent only
// reads the files; the workers it forks afterwards run the handshakes with
// the context they inherit (docs/SECURITY.md).
#pragma once

#include <expected>
#include <optional>
#include <string>

#include "server/server_config.h"
#include "tls/tls_context.h"

namespace lottery {

// std::nullopt when tls.mode is off; the error names the file that failed.
std::expected<std::optional<TlsContext>, std::string> LoadServerTls(const ServerConfig& config);

// The tls.* keys in one log field ("mode: required | certificate: ...").
std::string DescribeServerTls(const ServerConfig& config);

}  // namespace lottery
