// A TLS 1.3 context (OpenSSL's SSL_CTX) built from the files of
// TlsSettings: this program's certificate and key, the CA its peers must be
// signed by and, on the server, the revocation list. Building one reads and
// checks every file, so a bad file is a start-up (or reload) error, never a
// handshake error.
//
// The server's parent builds it and never uses it: workers forked after that
// run the handshakes with it (docs/SECURITY.md). Move-only; owns the SSL_CTX.
#pragma once

#include <openssl/ssl.h>

#include <string>

#include "common/status.h"
#include "tls/tls_settings.h"

namespace lottery {

class TlsContext {
 public:
  // Requires a client certificate signed by settings.ca (and not revoked,
  // when settings.crl is set) on every connection.
  static Result<TlsContext> ForServer(const TlsSettings& settings);
  // Verifies the server's certificate against settings.ca and `server_name`
  // (a DNS name or an IP address).
  static Result<TlsContext> ForAgency(const TlsSettings& settings, std::string server_name);

  TlsContext(TlsContext&& other) noexcept;
  TlsContext& operator=(TlsContext&& other) noexcept;
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;
  ~TlsContext();

  SSL_CTX* get() const { return ctx_; }
  const std::string& server_name() const { return server_name_; }
  // This program's own certificate (owned by the context).
  X509* certificate() const { return SSL_CTX_get0_certificate(ctx_); }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_ = nullptr;
  std::string server_name_;
};

// OpenSSL's error queue as one line (and emptied), after `what`.
std::string TakeOpenSslErrors(std::string_view what);

}  // namespace lottery
