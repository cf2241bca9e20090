#include "server/server_tls.h"

#include <fmt/format.h>

namespace lottery {

std::expected<std::optional<TlsContext>, std::string> LoadServerTls(const ServerConfig& config) {
  if (config.tls.mode == TlsMode::kOff) return std::optional<TlsContext>();
  auto context = TlsContext::ForServer(config.tls);
  if (!context) return std::unexpected(context.error().message);
  return std::optional<TlsContext>(std::move(*context));
}

std::string DescribeServerTls(const ServerConfig& config) {
  const TlsSettings& t = config.tls;
  if (t.mode == TlsMode::kOff) return "mode: off";
  return fmt::format("mode: required | certificate: {} | client_ca: {} | crl: {}", t.certificate,
                     t.ca, t.crl.empty() ? "none" : t.crl);
}

}  // namespace lottery
