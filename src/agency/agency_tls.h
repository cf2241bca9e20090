// The agency's TLS context: built from the tls.* keys at start, checked
// against the agency's own id, or a warning when tls.mode is off.
#pragma once

#include <expected>
#include <optional>

#include "agency/agency_config.h"
#include "tls/tls_context.h"

namespace lottery {

// std::nullopt when tls.mode is off. On failure the error is logged and the
// result holds the exit code (78).
std::expected<std::optional<TlsContext>, int> LoadAgencyTls(const AgencyConfig& config);

}  // namespace lottery
