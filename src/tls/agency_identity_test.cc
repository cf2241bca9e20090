#include "tls/agency_identity.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <memory>

#include <doctest/doctest.h>

#include "common/agency_limit.h"
#include "tls/tls_test_util.h"

namespace lottery {
namespace {

using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;

// A self-signed certificate with subject CN `cn` and the given SAN URIs.
X509Ptr MakeCertificate(const std::string& cn, const std::vector<std::string>& uris) {
  X509Ptr cert(X509_new(), X509_free);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), EVP_PKEY_free);
  REQUIRE(key);
  X509_set_version(cert.get(), 2);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), 0);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  X509_set_issuer_name(cert.get(), name);
  X509_set_pubkey(cert.get(), key.get());
  if (!uris.empty()) {
    std::string value;
    for (const auto& u : uris) value += (value.empty() ? "URI:" : ",URI:") + u;
    X509_EXTENSION* ext =
        X509V3_EXT_conf_nid(nullptr, nullptr, NID_subject_alt_name, value.c_str());
    REQUIRE(ext != nullptr);
    X509_add_ext(cert.get(), ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(cert.get(), key.get(), EVP_sha256());
  return cert;
}

X509Ptr ReadPem(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "r");
  REQUIRE(f != nullptr);
  X509Ptr cert(PEM_read_X509(f, nullptr, nullptr, nullptr), X509_free);
  std::fclose(f);
  REQUIRE(cert);
  return cert;
}

TEST_CASE("the agency URI names one agency id, written plainly") {
  CHECK(ParseAgencyUri("urn:lottery:agency:1") == 1u);
  CHECK(ParseAgencyUri("urn:lottery:agency:42") == 42u);
  CHECK(ParseAgencyUri(fmt::format("urn:lottery:agency:{}", kMaxAgencies)) ==
        static_cast<std::uint32_t>(kMaxAgencies));
  CHECK_FALSE(ParseAgencyUri(fmt::format("urn:lottery:agency:{}", kMaxAgencies + 1)));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency:0"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency:01"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency:1x"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency:"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency:-1"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:agency: 1"));
  CHECK_FALSE(ParseAgencyUri("urn:lottery:server:1"));
  CHECK_FALSE(ParseAgencyUri("URN:LOTTERY:AGENCY:1"));
  CHECK(ParseAgencyCommonName("agency-7") == 7u);
  CHECK_FALSE(ParseAgencyCommonName("agency-07"));
  CHECK_FALSE(ParseAgencyCommonName("agency-"));
  CHECK_FALSE(ParseAgencyCommonName("server"));
  CHECK_FALSE(ParseAgencyCommonName("xagency-7"));
}

TEST_CASE("a certificate speaks for the agency its URI and CN name") {
  CHECK(IdentifyCertificate(MakeCertificate("agency-3", {"urn:lottery:agency:3"}).get()).agency ==
        3u);
  // The URI alone, or the CN alone, is enough.
  CHECK(IdentifyCertificate(MakeCertificate("someone", {"urn:lottery:agency:4"}).get()).agency ==
        4u);
  CHECK(IdentifyCertificate(MakeCertificate("agency-5", {}).get()).agency == 5u);
  // Other URIs do not count.
  CHECK(IdentifyCertificate(MakeCertificate("agency-6", {"https://example.org/"}).get()).agency ==
        6u);
}

TEST_CASE("a certificate whose names disagree speaks for no agency") {
  CertificateIdentity both =
      IdentifyCertificate(MakeCertificate("agency-2", {"urn:lottery:agency:1"}).get());
  CHECK(both.agency == 0u);
  CHECK(both.problem.find("agency 1") != std::string::npos);
  CertificateIdentity two = IdentifyCertificate(
      MakeCertificate("x", {"urn:lottery:agency:1", "urn:lottery:agency:2"}).get());
  CHECK(two.agency == 0u);
  CHECK_FALSE(two.problem.empty());
  CertificateIdentity none = IdentifyCertificate(MakeCertificate("probe", {}).get());
  CHECK(none.agency == 0u);
  CHECK(none.subject == "/CN=probe");
  CHECK(IdentifyCertificate(nullptr).agency == 0u);
}

TEST_CASE("tools/gen_certs.py writes the id into each agency's certificate, and none elsewhere") {
  testing::CertSet certs(3);
  for (int k = 1; k <= 3; ++k) {
    CertificateIdentity id =
        IdentifyCertificate(ReadPem(certs.File(fmt::format("agency-{}.pem", k))).get());
    CHECK(id.agency == static_cast<std::uint32_t>(k));
    CHECK(id.subject == fmt::format("/CN=agency-{}", k));
  }
  CHECK(IdentifyCertificate(ReadPem(certs.File("server.pem")).get()).agency == 0u);
  CHECK(IdentifyCertificate(ReadPem(certs.File("probe.pem")).get()).agency == 0u);
  // Keys are readable by their owner only.
  for (const char* key : {"ca.key", "server.key", "probe.key", "agency-1.key"}) {
    auto perms = std::filesystem::status(certs.File(key)).permissions();
    CHECK((perms & (std::filesystem::perms::group_all | std::filesystem::perms::others_all)) ==
          std::filesystem::perms::none);
  }
}

}  // namespace
}  // namespace lottery
