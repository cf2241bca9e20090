// A TLS session over one connected socket, as a ByteStream (frame I/O reads
// and writes through it). The handshake functions run it to the end within
// a deadline, waking early when `cancel_fd` becomes readable.
//
// The stream borrows the socket (it must outlive the stream) and keeps the
// context's settings of the moment it was made; it owns its SSL.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>

#include <optional>
#include <span>

#include "common/byte_stream.h"
#include "tls/agency_identity.h"
#include "tls/tls_context.h"

namespace lottery {

class TlsStream final : public ByteStream {
 public:
  ~TlsStream() override;
  TlsStream(const TlsStream&) = delete;
  TlsStream& operator=(const TlsStream&) = delete;

  int fd() const override { return fd_; }
  StreamStep ReadSome(char* buffer, std::size_t length) override;
  StreamStep WriteSome(const char* buffer, std::size_t length) override;
  // The pieces gathered into one SSL_write of up to kGatherBytes, so that
  // many small frames go out as few full records (16 KiB each) rather than
  // a record and a write() each.
  StreamStep WriteSomeOf(std::span<const std::string_view> pieces) override;
  static constexpr std::size_t kGatherBytes = 64 * 1024;
  const std::string& error() const override { return error_; }
  // The last kError was a fatal alert from the peer (it refused us, for
  // instance our certificate), not a broken connection.
  bool refused_by_peer() const { return refused_by_peer_; }

  // Who is at the other end: the verified peer certificate's subject and
  // the agency it speaks for.
  CertificateIdentity PeerIdentity() const;

 private:
  friend struct Handshake;
  friend struct HandshakeRunner;
  TlsStream(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  StreamStep Step(int rc, std::size_t bytes);

  SSL* ssl_;
  int fd_;
  bool broken_ = false;  // a fatal error happened: no close_notify
  bool refused_by_peer_ = false;
  std::string error_;
  // The end (closed, error) met after records already read in the same
  // ReadSome: handed out by the next call.
  std::optional<StreamStep> deferred_;
  std::string gathered_;  // WriteSomeOf's pieces, copied together
};

struct Handshake {
  enum End {
    kDone,
    kFailed,  // the TLS handshake failed (error says why: a certificate, an alert)
    kNotTls,  // the peer spoke something that is not TLS (plaintext, garbage)
    kClosed,  // the peer closed before the handshake
    kTimeout,
    kCancelled,
  };
  End end = kFailed;
  std::unique_ptr<TlsStream> stream;  // set when kDone
  std::string error;
  // The client's side: the first bytes the handshake read from the server
  // (up to 1 KiB), so that a plaintext refusal it consumed can still be read.
  std::string first_bytes;
};

const char* HandshakeEndName(Handshake::End end);

using TlsClock = std::chrono::steady_clock;

// The server's side. A first byte that cannot start a TLS record ends it at
// once as kNotTls, with nothing consumed, so the caller can answer in
// plaintext.
Handshake TlsAccept(const TlsContext& context, int fd, int cancel_fd,
                    TlsClock::time_point deadline);
// The agency's side: verifies the server's certificate and `server_name`
// ("": context.server_name()), the name of the server at this address.
// A reply to the ClientHello that cannot start a TLS record ends it as
// kNotTls with nothing consumed: the caller can read the plaintext.
Handshake TlsConnect(const TlsContext& context, int fd, int cancel_fd,
                     TlsClock::time_point deadline, const std::string& server_name = {});

}  // namespace lottery
