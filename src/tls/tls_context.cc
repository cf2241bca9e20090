#include "tls/tls_context.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <fmt/format.h>

namespace lottery {
namespace {

Result<SSL_CTX*> NewContext(const SSL_METHOD* method, const TlsSettings& s, std::string_view role) {
  SSL_CTX* ctx = SSL_CTX_new(method);
  if (ctx == nullptr) return Fail(ErrorKind::kInternal, TakeOpenSslErrors("SSL_CTX_new"));
  auto fail = [ctx](std::string message) {
    SSL_CTX_free(ctx);
    return Fail(ErrorKind::kConfig, std::move(message));
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
  // A peer that vanishes without close_notify is a closed connection; the
  // frame layer tells a cut frame from a clean end.
  SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Every record already received in one read() instead of two per record
  // (its header, then its body): a busy agency's records cost the worker a
  // system call per 64 KiB, not two per 16 KiB (docs/PERFORMANCE.md).
  // TlsStream::ReadSome drains whole records before it reports "would
  // block", so nothing stays in OpenSSL's buffer that poll() would miss.
  SSL_CTX_set_read_ahead(ctx, 1);
  SSL_CTX_set_default_read_buffer_len(ctx, 64 * 1024);
  if (SSL_CTX_use_certificate_chain_file(ctx, s.certificate.c_str()) != 1) {
    return fail(TakeOpenSslErrors(fmt::format("tls.certificate {} ({})", s.certificate, role)));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, s.private_key.c_str(), SSL_FILETYPE_PEM) != 1) {
    return fail(TakeOpenSslErrors(fmt::format("tls.private_key {}", s.private_key)));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    return fail(TakeOpenSslErrors(fmt::format(
        "tls.private_key {} does not match tls.certificate {}", s.private_key, s.certificate)));
  }
  if (SSL_CTX_load_verify_locations(ctx, s.ca.c_str(), nullptr) != 1) {
    return fail(TakeOpenSslErrors(
        fmt::format("{} {}", role == "server" ? "tls.client_ca" : "tls.server_ca", s.ca)));
  }
  return ctx;
}

}  // namespace

std::string TakeOpenSslErrors(std::string_view what) {
  std::string out(what);
  bool first = true;
  while (unsigned long e = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    out += first ? ": " : "; ";
    out += text;
    first = false;
  }
  if (first) out += ": unknown TLS error";
  return out;
}

Result<TlsContext> TlsContext::ForServer(const TlsSettings& s) {
  auto ctx = NewContext(TLS_server_method(), s, "server");
  if (!ctx) return std::unexpected(ctx.error());
  TlsContext out(*ctx);
  SSL_CTX_set_verify(out.ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  // Only certificates issued for clients: an agency cannot present the
  // server's certificate, nor a server certificate from the same CA.
  SSL_CTX_set_purpose(out.ctx_, X509_PURPOSE_SSL_CLIENT);
  // No session resumption: each connection proves its certificate again
  // (and meets the current revocation list).
  SSL_CTX_set_session_cache_mode(out.ctx_, SSL_SESS_CACHE_OFF);
  SSL_CTX_set_num_tickets(out.ctx_, 0);
  if (!s.crl.empty()) {
    X509_STORE* store = SSL_CTX_get_cert_store(out.ctx_);
    X509_LOOKUP* lookup = X509_STORE_add_lookup(store, X509_LOOKUP_file());
    if (lookup == nullptr || X509_load_crl_file(lookup, s.crl.c_str(), X509_FILETYPE_PEM) < 1) {
      return Fail(ErrorKind::kConfig, TakeOpenSslErrors(fmt::format("tls.crl {}", s.crl)));
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK);
  }
  // The CA's name goes in the CertificateRequest, so a client with several
  // certificates can pick the right one.
  if (STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(s.ca.c_str())) {
    SSL_CTX_set_client_CA_list(out.ctx_, names);
  }
  ERR_clear_error();
  return out;
}

Result<TlsContext> TlsContext::ForAgency(const TlsSettings& s, std::string server_name) {
  auto ctx = NewContext(TLS_client_method(), s, "agency");
  if (!ctx) return std::unexpected(ctx.error());
  TlsContext out(*ctx);
  SSL_CTX_set_verify(out.ctx_, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_purpose(out.ctx_, X509_PURPOSE_SSL_SERVER);
  SSL_CTX_set_session_cache_mode(out.ctx_, SSL_SESS_CACHE_OFF);
  out.server_name_ = std::move(server_name);
  return out;
}

TlsContext::TlsContext(TlsContext&& other) noexcept
    : ctx_(std::exchange(other.ctx_, nullptr)), server_name_(std::move(other.server_name_)) {}

TlsContext& TlsContext::operator=(TlsContext&& other) noexcept {
  if (this != &other) {
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    ctx_ = std::exchange(other.ctx_, nullptr);
    server_name_ = std::move(other.server_name_);
  }
  return *this;
}

TlsContext::~TlsContext() {
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

}  // namespace lottery
