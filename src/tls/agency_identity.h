// Which agency a certificate speaks for. An agency's certificate carries its
// id as a SAN URI `urn:lottery:agency:K` and as the subject CN `agency-K`
// (tools/gen_certs.py writes both); the URI wins, and a certificate whose
// two disagree speaks for no agency. docs/SECURITY.md has the rules.
#pragma once

#include <openssl/x509.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lottery {

// "urn:lottery:agency:K" -> K, for K in 1..kMaxAgencies written without
// leading zeros; anything else -> nullopt.
std::optional<std::uint32_t> ParseAgencyUri(std::string_view uri);
// "agency-K" -> K, with the same rules.
std::optional<std::uint32_t> ParseAgencyCommonName(std::string_view common_name);

struct CertificateIdentity {
  std::string subject;       // the subject in one line, for logs ("CN=agency-2")
  std::uint32_t agency = 0;  // 0: the certificate speaks for no agency
  std::string problem;       // why not, when it carries a conflicting id
};

CertificateIdentity IdentifyCertificate(X509* certificate);

}  // namespace lottery
