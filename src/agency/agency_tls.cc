#include "agency/agency_tls.h"

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "tls/agency_identity.h"

namespace lottery {

std::expected<std::optional<TlsContext>, int> LoadAgencyTls(const AgencyConfig& config) {
  std::optional<TlsContext> tls;
  if (config.tls.mode == TlsMode::kRequired) {
    auto context = TlsContext::ForAgency(config.tls, config.ServerName());
    if (!context) {
      Log(LogLevel::kError, "tls", Outcome::kFail, "client_id: {} | error: {}", config.id,
          context.error().message);
      return std::unexpected(kExitConfig);
    }
    // A certificate of another agency would be refused by the server at
    // HELLO; say so now, in this agency's terms. Echo mode says no HELLO:
    // any certificate of the CA will do (health checks use one that names
    // no agency).
    CertificateIdentity own = IdentifyCertificate(context->certificate());
    if (own.agency != config.id && config.mode != AgencyMode::kEcho) {
      Log(LogLevel::kError, "tls", Outcome::kFail,
          "client_id: {} | error: tls.certificate {} ({}) {}, not agency {}'s; check agency.id and "
          "tls.certificate",
          config.id, config.tls.certificate, own.subject,
          own.agency == 0 ? std::string("speaks for no agency")
                          : fmt::format("is agency {}'s", own.agency),
          config.id);
      return std::unexpected(kExitConfig);
    }
    Log(LogLevel::kInfo, "tls", Outcome::kSuccess,
        "client_id: {} | mode: required | certificate: {} | server_ca: {} | server_name: {}",
        config.id, config.tls.certificate, config.tls.ca, context->server_name());
    tls = std::move(*context);
  } else {
    Log(LogLevel::kWarning, "tls", Outcome::kInProgress,
        "client_id: {} | mode: off | detail: the connection is neither encrypted nor "
        "authenticated: anything that answers on the server's address gets the bets and can "
        "send back any winners",
        config.id);
  }
  return tls;
}

}  // namespace lottery
