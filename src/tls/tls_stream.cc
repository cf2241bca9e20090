#include "tls/tls_stream.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include <fmt/format.h>

namespace lottery {
namespace {

// TLS records start with a content type; a ClientHello with 22 (handshake).
constexpr unsigned char kTlsHandshakeRecord = 0x16;
constexpr unsigned char kTlsAlertRecord = 0x15;

bool IsIpAddress(const std::string& name) {
  unsigned char buffer[16];
  return ::inet_pton(AF_INET, name.c_str(), buffer) == 1 ||
         ::inet_pton(AF_INET6, name.c_str(), buffer) == 1;
}

// Whether OpenSSL's first queued error says the peer's bytes were not TLS.
bool PeerSpokeNonTls() {
  unsigned long e = ERR_peek_error();
  if (ERR_GET_LIB(e) != ERR_LIB_SSL) return false;
  int reason = ERR_GET_REASON(e);
  return reason == SSL_R_WRONG_VERSION_NUMBER || reason == SSL_R_PACKET_LENGTH_TOO_LONG ||
         reason == SSL_R_UNEXPECTED_RECORD || reason == SSL_R_HTTP_REQUEST ||
         reason == SSL_R_LENGTH_MISMATCH;
}

bool PeerSentAlert() {
  unsigned long e = ERR_peek_error();
  return ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET;
}

// Enough for a plaintext ERROR frame (the server's refusal).
constexpr std::size_t kCaptureBytes = 1024;

// Keeps the first bytes a socket BIO reads in the std::string its
// callback argument points to.
long CaptureFirstBytes(BIO* bio, int oper, const char* argp, std::size_t, int, long, int ret,
                       std::size_t* processed) {
  if (oper == (BIO_CB_READ | BIO_CB_RETURN) && ret > 0 && processed != nullptr) {
    auto* sink = reinterpret_cast<std::string*>(BIO_get_callback_arg(bio));
    if (sink != nullptr && sink->size() < kCaptureBytes) {
      sink->append(argp, std::min<std::size_t>(*processed, kCaptureBytes - sink->size()));
    }
  }
  return ret;
}

// Captures into `sink` while it lives (the client's handshake).
class FirstBytesCapture {
 public:
  FirstBytesCapture(SSL* ssl, std::string* sink) : bio_(SSL_get_rbio(ssl)) {
    if (bio_ == nullptr) return;
    BIO_set_callback_arg(bio_, reinterpret_cast<char*>(sink));
    BIO_set_callback_ex(bio_, CaptureFirstBytes);
  }
  ~FirstBytesCapture() {
    if (bio_ == nullptr) return;
    BIO_set_callback_ex(bio_, nullptr);
    BIO_set_callback_arg(bio_, nullptr);
  }
  FirstBytesCapture(const FirstBytesCapture&) = delete;
  FirstBytesCapture& operator=(const FirstBytesCapture&) = delete;

 private:
  BIO* bio_;
};

}  // namespace

// Drives SSL_accept/SSL_connect on a non-blocking socket: each turn either
// peeks at the peer's first byte or advances OpenSSL, then waits for the
// socket when OpenSSL needs it. A failure leaves its reason in `out`.
// Which end of the handshake HandshakeRunner::Run drives.
enum class TlsRole { kServer, kClient };

struct HandshakeRunner {
  // What one turn decided.
  enum class Turn { kDone, kFailed, kWait, kAgain };

  static Handshake Run(const TlsContext& context, int fd, int cancel_fd,
                       TlsClock::time_point deadline, TlsRole role,
                       const std::string& server_name = {}) {
    const bool server = role == TlsRole::kServer;
    Handshake out;
    std::unique_ptr<TlsStream> stream = Prepare(context, fd, server, server_name, out);
    if (!stream) return out;
    std::optional<FirstBytesCapture> capture;
    if (!server) capture.emplace(stream->ssl_, &out.first_bytes);
    HandshakeRunner runner{out, *stream, fd, server};
    if (runner.Drive(cancel_fd, deadline)) {
      out.end = Handshake::kDone;
      out.stream = std::move(stream);
    }
    return out;
  }

  // The stream over `fd`, non-blocking, with the name a client checks in
  // the server's certificate; null (and `out.error`) when that fails.
  static std::unique_ptr<TlsStream> Prepare(const TlsContext& context, int fd, bool server,
                                            const std::string& server_name, Handshake& out) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0 || ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      out.error = fmt::format("fcntl: {}", std::strerror(errno));
      return nullptr;
    }
    SSL* ssl = SSL_new(context.get());
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
      if (ssl != nullptr) SSL_free(ssl);
      out.error = TakeOpenSslErrors("SSL_new");
      return nullptr;
    }
    std::unique_ptr<TlsStream> stream(new TlsStream(ssl, fd));
    if (server) return stream;
    const std::string& name = server_name.empty() ? context.server_name() : server_name;
    X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
    bool named = IsIpAddress(name) ? X509_VERIFY_PARAM_set1_ip_asc(param, name.c_str()) == 1
                                   : (SSL_set_tlsext_host_name(ssl, name.c_str()) == 1 &&
                                      SSL_set1_host(ssl, name.c_str()) == 1);
    if (!named) {
      stream->broken_ = true;
      out.error = TakeOpenSslErrors(fmt::format("tls.server_name {}", name));
      return nullptr;
    }
    return stream;
  }

  // Returns true once the handshake is done.
  bool Drive(int cancel_fd, TlsClock::time_point deadline) {
    while (true) {
      const Turn turn = !peeked && started ? PeekFirstByte() : Advance();
      if (turn == Turn::kDone) return true;
      if (turn == Turn::kFailed) return false;
      if (turn == Turn::kAgain) continue;
      if (!Wait(cancel_fd, deadline)) return false;
    }
  }

  // The first byte tells a TLS peer from a plaintext one before OpenSSL
  // consumes anything: a client meets a server that refused it in
  // plaintext (TOO_MANY_CONNECTIONS), and can read why.
  Turn PeekFirstByte() {
    unsigned char first = 0;
    ssize_t n = ::recv(fd, &first, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 1) {
      peeked = true;
      if (first != kTlsHandshakeRecord && (server || first != kTlsAlertRecord)) {
        return Fail(Handshake::kNotTls,
                    fmt::format("the peer sent byte 0x{:02x}, not a TLS handshake", first));
      }
      return Turn::kAgain;
    }
    if (n == 0) return Fail(Handshake::kClosed, "the peer closed before the TLS handshake");
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      // A reset (a server that evicted this connection, a peer that
      // vanished) is a lost connection, not a verdict on a certificate.
      return Fail(Handshake::kClosed, std::strerror(errno));
    }
    return Turn::kWait;
  }

  // One call of SSL_accept/SSL_connect; the client peeks once its
  // ClientHello is out.
  Turn Advance() {
    started = true;
    ERR_clear_error();
    int rc = server ? SSL_accept(ssl) : SSL_connect(ssl);
    if (rc == 1) return Turn::kDone;
    int e = SSL_get_error(ssl, rc);
    if (e == SSL_ERROR_WANT_READ) {
      events = POLLIN;
      return Turn::kWait;
    }
    if (e == SSL_ERROR_WANT_WRITE) {
      events = POLLOUT;
      return Turn::kWait;
    }
    stream.broken_ = true;
    long verify = SSL_get_verify_result(ssl);
    if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
      return Fail(Handshake::kClosed,
                  errno != 0 ? std::strerror(errno) : "the peer closed during the handshake");
    }
    out.end = PeerSpokeNonTls() ? Handshake::kNotTls : Handshake::kFailed;
    out.error = TakeOpenSslErrors("TLS handshake");
    if (verify != X509_V_OK) {
      out.error += fmt::format(" (certificate: {})", X509_verify_cert_error_string(verify));
    }
    return Turn::kFailed;
  }

  // Waits for `events`; false (and why in `out`) when the wait ends otherwise.
  bool Wait(int cancel_fd, TlsClock::time_point deadline) {
    switch (WaitForEvents(fd, events, cancel_fd, deadline)) {
      case WaitResult::kReady: return true;
      case WaitResult::kTimeout:
        Fail(Handshake::kTimeout, "the TLS handshake did not finish in time");
        return false;
      case WaitResult::kCancelled: Fail(Handshake::kCancelled, "cancelled"); return false;
      case WaitResult::kError:
        stream.broken_ = true;
        out.error = std::strerror(errno);
        return false;
    }
    return true;
  }

  Turn Fail(Handshake::End end, std::string error) {
    stream.broken_ = true;
    out.end = end;
    out.error = std::move(error);
    return Turn::kFailed;
  }

  Handshake& out;
  TlsStream& stream;
  int fd;
  bool server;
  SSL* ssl = stream.ssl_;
  short events = POLLIN;
  bool peeked = false;
  bool started = server;  // the client peeks once its ClientHello is out
};

const char* HandshakeEndName(Handshake::End end) {
  switch (end) {
    case Handshake::kDone: return "done";
    case Handshake::kFailed: return "failed";
    case Handshake::kNotTls: return "not_tls";
    case Handshake::kClosed: return "closed";
    case Handshake::kTimeout: return "timeout";
    case Handshake::kCancelled: return "cancelled";
  }
  return "failed";
}

Handshake TlsAccept(const TlsContext& context, int fd, int cancel_fd,
                    TlsClock::time_point deadline) {
  return HandshakeRunner::Run(context, fd, cancel_fd, deadline, TlsRole::kServer);
}

Handshake TlsConnect(const TlsContext& context, int fd, int cancel_fd,
                     TlsClock::time_point deadline, const std::string& server_name) {
  return HandshakeRunner::Run(context, fd, cancel_fd, deadline, TlsRole::kClient, server_name);
}

TlsStream::~TlsStream() {
  // close_notify, once and without waiting: the peer may be gone already.
  if (!broken_) SSL_shutdown(ssl_);
  SSL_free(ssl_);
  ERR_clear_error();
}

StreamStep TlsStream::Step(int rc, std::size_t bytes) {
  if (rc == 1) return {StreamStep::kData, bytes, 0};
  switch (SSL_get_error(ssl_, rc)) {
    case SSL_ERROR_WANT_READ: return {StreamStep::kWouldBlock, 0, POLLIN};
    case SSL_ERROR_WANT_WRITE: return {StreamStep::kWouldBlock, 0, POLLOUT};
    case SSL_ERROR_ZERO_RETURN: return {StreamStep::kClosed, 0, 0};
    case SSL_ERROR_SYSCALL:
      broken_ = true;
      if (ERR_peek_error() == 0 && errno == 0) return {StreamStep::kClosed, 0, 0};
      error_ = ERR_peek_error() != 0 ? TakeOpenSslErrors("TLS") : std::string(std::strerror(errno));
      return {StreamStep::kError, 0, 0};
    default:
      broken_ = true;
      refused_by_peer_ = PeerSentAlert();
      error_ = TakeOpenSslErrors("TLS");
      return {StreamStep::kError, 0, 0};
  }
}

StreamStep TlsStream::ReadSome(char* buffer, std::size_t length) {
  if (deferred_) {
    StreamStep end = *deferred_;
    deferred_.reset();
    return end;
  }
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  int rc = SSL_read_ex(ssl_, buffer, length, &n);
  if (rc != 1) return Step(rc, n);
  // SSL_read hands out one record at a time: take every record already here
  // in the same call, so that a worker sees the batches that arrived
  // together and stores them with one append (docs/PERFORMANCE.md).
  while (n < length) {
    ERR_clear_error();
    errno = 0;
    std::size_t more = 0;
    rc = SSL_read_ex(ssl_, buffer + n, length - n, &more);
    if (rc == 1) {
      n += more;
      continue;
    }
    StreamStep next = Step(rc, 0);
    if (next.kind != StreamStep::kWouldBlock) deferred_ = next;
    break;
  }
  return {StreamStep::kData, n, 0};
}

StreamStep TlsStream::WriteSome(const char* buffer, std::size_t length) {
  ERR_clear_error();
  errno = 0;
  std::size_t n = 0;
  int rc = SSL_write_ex(ssl_, buffer, length, &n);
  return Step(rc, n);
}

StreamStep TlsStream::WriteSomeOf(std::span<const std::string_view> pieces) {
  // A write that must be retried gets the same bytes again (the caller
  // passes what was not written), at least as many: what OpenSSL asks of a
  // retried SSL_write, with SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER for the
  // new address.
  gathered_.clear();
  for (std::string_view piece : pieces) {
    if (piece.empty()) continue;
    if (gathered_.empty() && piece.size() >= kGatherBytes)
      return WriteSome(piece.data(), piece.size());
    const std::size_t room = kGatherBytes - gathered_.size();
    gathered_.append(piece.substr(0, room));
    if (piece.size() >= room) break;
  }
  if (gathered_.empty()) return {StreamStep::kData, 0, 0};
  // With partial writes on, SSL_write returns after each record, and writes
  // each record with a send of its own: go on until all of it is written or
  // the socket is full, with TCP holding the records back (TCP_CORK) until
  // the last, so that they travel as the plaintext round's 64 KiB sends do,
  // not one segment each. Uncorking sends what is held at once. On a
  // socket that is not TCP the option fails, harmlessly.
  const bool cork = gathered_.size() > SSL3_RT_MAX_PLAIN_LENGTH;  // more than one record
  auto set_cork = [this](int on) {
    (void)::setsockopt(fd_, IPPROTO_TCP, TCP_CORK, &on, sizeof on);
  };
  if (cork) set_cork(1);
  std::size_t written = 0;
  StreamStep blocked{StreamStep::kData, 0, 0};
  while (written < gathered_.size()) {
    StreamStep step = WriteSome(gathered_.data() + written, gathered_.size() - written);
    if (step.kind != StreamStep::kData) {
      blocked = step;
      break;
    }
    written += step.bytes;
  }
  if (cork) set_cork(0);
  if (written == 0 && blocked.kind != StreamStep::kData) return blocked;
  return {StreamStep::kData, written, 0};
}

CertificateIdentity TlsStream::PeerIdentity() const {
  return IdentifyCertificate(SSL_get0_peer_certificate(ssl_));
}

}  // namespace lottery
