#include "tls/agency_identity.h"

#include <openssl/objects.h>
#include <openssl/x509v3.h>

#include <charconv>
#include <memory>

#include <fmt/format.h>

#include "common/agency_limit.h"

namespace lottery {
namespace {

std::optional<std::uint32_t> ParseId(std::string_view text) {
  if (text.empty() || text.size() > 9 || text[0] == '0') return std::nullopt;
  std::uint32_t id = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  if (id < 1 || id > static_cast<std::uint32_t>(kMaxAgencies)) return std::nullopt;
  return id;
}

std::string_view AsView(const ASN1_STRING* s) {
  return {reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
          static_cast<std::size_t>(ASN1_STRING_length(s))};
}

}  // namespace

std::optional<std::uint32_t> ParseAgencyUri(std::string_view uri) {
  constexpr std::string_view kPrefix = "urn:lottery:agency:";
  if (!uri.starts_with(kPrefix)) return std::nullopt;
  return ParseId(uri.substr(kPrefix.size()));
}

std::optional<std::uint32_t> ParseAgencyCommonName(std::string_view common_name) {
  constexpr std::string_view kPrefix = "agency-";
  if (!common_name.starts_with(kPrefix)) return std::nullopt;
  return ParseId(common_name.substr(kPrefix.size()));
}

CertificateIdentity IdentifyCertificate(X509* certificate) {
  CertificateIdentity out;
  if (certificate == nullptr) {
    out.problem = "no certificate";
    return out;
  }
  X509_NAME* name = X509_get_subject_name(certificate);
  char line[256];
  X509_NAME_oneline(name, line, sizeof line);
  out.subject = line;

  std::optional<std::uint32_t> from_cn;
  int cn_index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
  if (cn_index >= 0) {
    from_cn = ParseAgencyCommonName(
        AsView(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, cn_index))));
  }
  std::optional<std::uint32_t> from_uri;
  int uris = 0;
  std::unique_ptr<GENERAL_NAMES, decltype(&GENERAL_NAMES_free)> sans(
      static_cast<GENERAL_NAMES*>(
          X509_get_ext_d2i(certificate, NID_subject_alt_name, nullptr, nullptr)),
      GENERAL_NAMES_free);
  if (sans) {
    for (int i = 0; i < sk_GENERAL_NAME_num(sans.get()); ++i) {
      const GENERAL_NAME* san = sk_GENERAL_NAME_value(sans.get(), i);
      if (san->type != GEN_URI) continue;
      if (auto id = ParseAgencyUri(AsView(san->d.uniformResourceIdentifier))) {
        ++uris;
        from_uri = id;
      }
    }
  }
  if (uris > 1) {
    out.problem = "the certificate names more than one agency";
    return out;
  }
  if (from_uri && from_cn && *from_uri != *from_cn) {
    out.problem = fmt::format("its URI names agency {} but its CN agency {}", *from_uri, *from_cn);
    return out;
  }
  out.agency = from_uri ? *from_uri : from_cn.value_or(0);
  return out;
}

}  // namespace lottery
