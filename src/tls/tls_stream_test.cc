#include "tls/tls_stream.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "common/unique_fd.h"
#include "tls/tls_test_util.h"
#include "wire/frame_io.h"

namespace lottery {
namespace {

using namespace std::chrono_literals;

struct SocketPair {
  UniqueFd server, agency;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    server.Reset(fds[0]);
    agency.Reset(fds[1]);
  }
};

// The same over TCP on 127.0.0.1, for what only TCP has (TCP_CORK).
struct TcpPair {
  UniqueFd server, agency;
  TcpPair() {
    UniqueFd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 1) == 0);
    socklen_t len = sizeof addr;
    REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    agency.Reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(::connect(agency.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    server.Reset(::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC));
    REQUIRE(server);
  }
};

struct Pair {
  Handshake server, agency;
};

// Both handshakes at once, the server's in a thread.
template <typename Sockets>
Pair Handshakes(const TlsContext& server, const TlsContext& agency, Sockets& s,
                std::chrono::milliseconds limit = 5000ms) {
  auto deadline = TlsClock::now() + limit;
  auto accepted = std::async(std::launch::async,
                             [&] { return TlsAccept(server, s.server.get(), -1, deadline); });
  Handshake a = TlsConnect(agency, s.agency.get(), -1, deadline);
  Handshake b = accepted.get();
  return Pair{std::move(b), std::move(a)};
}

TEST_CASE("mutual TLS: each side verifies the other; the server learns the agency id") {
  testing::CertSet certs(2);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(2), "127.0.0.1");
  REQUIRE(server);
  REQUIRE(agency);
  SocketPair s;
  Pair p = Handshakes(*server, *agency, s);
  REQUIRE(p.server.end == Handshake::kDone);
  REQUIRE(p.agency.end == Handshake::kDone);
  CHECK(p.server.stream->PeerIdentity().agency == 2u);
  CHECK(p.server.stream->PeerIdentity().subject == "/CN=agency-2");

  // Frames cross in both directions through the streams.
  std::string hello = std::string("\x01\x00\x00\x00\x04", 5) + std::string("\x00\x00\x00\x02", 4);
  REQUIRE(WriteAll(*p.agency.stream, hello, -1, 1000ms) == IoStatus::kOk);
  FrameReader reader(*p.server.stream, -1);
  Frame frame;
  REQUIRE(reader.Read(frame, 2000ms, 2000ms) == IoStatus::kOk);
  CHECK(frame.type == 1);
  CHECK(frame.payload == std::string("\x00\x00\x00\x02", 4));
  // A clean close (close_notify) reads as the end of the stream.
  p.agency.stream.reset();
  CHECK(reader.Read(frame, 2000ms, 2000ms) == IoStatus::kClosed);
}

TEST_CASE("one read takes every record already here; the end comes on the next read") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(1), "127.0.0.1");
  REQUIRE(server);
  REQUIRE(agency);
  SocketPair s;
  Pair p = Handshakes(*server, *agency, s);
  REQUIRE(p.server.end == Handshake::kDone);
  REQUIRE(p.agency.end == Handshake::kDone);
  // Three writes: three TLS records, then close_notify.
  std::string sent;
  for (char c : {'a', 'b', 'c'}) {
    std::string record(3000, c);
    REQUIRE(WriteAll(*p.agency.stream, record, -1, 1000ms) == IoStatus::kOk);
    sent += record;
  }
  p.agency.stream.reset();
  // All of it is in the socket before the first read.
  std::this_thread::sleep_for(100ms);
  std::string got(64 * 1024, '\0');
  StreamStep step = p.server.stream->ReadSome(got.data(), got.size());
  REQUIRE(step.kind == StreamStep::kData);
  CHECK(step.bytes == sent.size());
  CHECK(got.substr(0, step.bytes) == sent);
  step = p.server.stream->ReadSome(got.data(), got.size());
  CHECK(step.kind == StreamStep::kClosed);
}

// Frames handed over as many small pieces leave as few full records: one
// call takes many pieces. What the server's read-ahead pulls in beyond a
// small buffer comes out of the next reads, with the socket itself empty.
TEST_CASE("small pieces go out gathered, and read-ahead records come out of later reads") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(1), "127.0.0.1");
  REQUIRE(server);
  REQUIRE(agency);
  SocketPair s;
  Pair p = Handshakes(*server, *agency, s);
  REQUIRE(p.server.end == Handshake::kDone);
  REQUIRE(p.agency.end == Handshake::kDone);
  std::vector<std::string> frames;
  std::string sent;
  for (int i = 0; i < 40; ++i) {
    frames.emplace_back(1000, static_cast<char>('a' + i % 26));
    sent += frames.back();
  }
  std::vector<std::string_view> pieces(frames.begin(), frames.end());
  StreamStep first = p.agency.stream->WriteSomeOf(pieces);
  REQUIRE(first.kind == StreamStep::kData);
  CHECK(first.bytes == sent.size());  // all 40 pieces in one call, under kGatherBytes
  std::this_thread::sleep_for(100ms);
  std::string got;
  char small[1000];
  while (got.size() < sent.size()) {
    StreamStep step = p.server.stream->ReadSome(small, sizeof small);
    REQUIRE(step.kind == StreamStep::kData);
    got.append(small, step.bytes);
  }
  CHECK(got == sent);
  // Pieces beyond kGatherBytes take more calls, and all arrive in order.
  std::string big(3 * TlsStream::kGatherBytes / 2, 'z');
  std::vector<std::string_view> more = {std::string_view(big).substr(0, 100),
                                        std::string_view(big).substr(100)};
  auto written = std::async(std::launch::async, [&] {
    return WriteAll(*p.agency.stream, std::span<std::string_view>(more), -1, 5000ms);
  });
  std::string rest(big.size(), '\0');
  std::size_t have = 0;
  while (have < big.size()) {
    StreamStep step = p.server.stream->ReadSome(rest.data() + have, rest.size() - have);
    if (step.kind == StreamStep::kWouldBlock) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    REQUIRE(step.kind == StreamStep::kData);
    have += step.bytes;
  }
  CHECK(written.get() == IoStatus::kOk);
  CHECK(rest == big);
}

// Over TCP the records of one call are held back while they are written
// and sent together: the socket is uncorked again when the call returns,
// so nothing written waits for TCP's 200 ms cork timeout.
TEST_CASE("gathered records over TCP leave the socket uncorked") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(1), "127.0.0.1");
  REQUIRE(server);
  REQUIRE(agency);
  TcpPair s;
  Pair p = Handshakes(*server, *agency, s);
  REQUIRE(p.server.end == Handshake::kDone);
  REQUIRE(p.agency.end == Handshake::kDone);
  std::string payload(TlsStream::kGatherBytes, 'q');
  for (std::size_t i = 0; i < payload.size(); i += 7) payload[i] = static_cast<char>('a' + i % 26);
  std::vector<std::string_view> pieces;
  for (std::size_t at = 0; at < payload.size(); at += 8000) {
    pieces.push_back(std::string_view(payload).substr(at, 8000));
  }
  StreamStep step = p.agency.stream->WriteSomeOf(pieces);
  REQUIRE(step.kind == StreamStep::kData);
  CHECK(step.bytes == payload.size());
  int corked = -1;
  socklen_t len = sizeof corked;
  REQUIRE(::getsockopt(s.agency.get(), IPPROTO_TCP, TCP_CORK, &corked, &len) == 0);
  CHECK(corked == 0);
  std::string got(payload.size(), '\0');
  std::size_t have = 0;
  while (have < got.size()) {
    StreamStep r = p.server.stream->ReadSome(got.data() + have, got.size() - have);
    if (r.kind == StreamStep::kWouldBlock) {
      std::this_thread::sleep_for(1ms);
      continue;
    }
    REQUIRE(r.kind == StreamStep::kData);
    have += r.bytes;
  }
  CHECK(got == payload);
}

TEST_CASE("an agency refuses a server whose certificate lacks the expected name") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(1), "lottery.example.org");
  REQUIRE(server);
  REQUIRE(agency);
  SocketPair s;
  Pair p = Handshakes(*server, *agency, s);
  CHECK(p.agency.end == Handshake::kFailed);
  CHECK(p.agency.error.find("certificate") != std::string::npos);
  CHECK(p.server.end != Handshake::kDone);
}

TEST_CASE("a server refuses an agency certificate from another CA, or none that verifies") {
  testing::CertSet certs(1);
  testing::CertSet strangers(1);
  auto server = TlsContext::ForServer(certs.Server());
  REQUIRE(server);
  // The stranger trusts our CA (so it gets that far) but has its own cert.
  TlsSettings forged = strangers.Agency(1);
  forged.ca = certs.File("ca.pem");
  auto agency = TlsContext::ForAgency(forged, "127.0.0.1");
  REQUIRE(agency);
  SocketPair s;
  Pair p = Handshakes(*server, *agency, s);
  CHECK(p.server.end == Handshake::kFailed);
  CHECK(p.server.error.find("certificate") != std::string::npos);
  // TLS 1.3: the agency's side completes, and learns of the refusal as an
  // alert on its first read.
  if (p.agency.end == Handshake::kDone) {
    char byte;
    StreamStep step{};
    for (int i = 0; i < 100; ++i) {
      step = p.agency.stream->ReadSome(&byte, 1);
      if (step.kind != StreamStep::kWouldBlock) break;
      ::usleep(10000);
    }
    CHECK(step.kind == StreamStep::kError);
    CHECK(p.agency.stream->refused_by_peer());
  }
}

TEST_CASE("the server refuses an expired or revoked agency certificate") {
  testing::CertSet certs(2);
  REQUIRE(certs.Run("--reissue agency-1 --expired") == 0);
  REQUIRE(certs.Run("--revoke agency-2") == 0);
  TlsSettings with_crl = certs.Server();
  with_crl.crl = certs.File("crl.pem");
  auto server = TlsContext::ForServer(with_crl);
  REQUIRE(server);
  for (int id : {1, 2}) {
    auto agency = TlsContext::ForAgency(certs.Agency(id), "127.0.0.1");
    REQUIRE(agency);
    SocketPair s;
    Pair p = Handshakes(*server, *agency, s);
    CHECK(p.server.end == Handshake::kFailed);
    CHECK(p.server.error.find(id == 1 ? "expired" : "revoked") != std::string::npos);
  }
}

TEST_CASE("a plaintext first byte ends the server's handshake at once, with nothing consumed") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  REQUIRE(server);
  SocketPair s;
  REQUIRE(::write(s.agency.get(), "\x05\x00\x00\x00\x01x", 6) == 6);
  Handshake h = TlsAccept(*server, s.server.get(), -1, TlsClock::now() + 5s);
  CHECK(h.end == Handshake::kNotTls);
  char buffer[8];
  CHECK(::recv(s.server.get(), buffer, sizeof buffer, MSG_DONTWAIT) == 6);
}

TEST_CASE("a silent peer times the handshake out; a cancel descriptor ends it") {
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  REQUIRE(server);
  SocketPair s;
  auto start = TlsClock::now();
  Handshake h = TlsAccept(*server, s.server.get(), -1, start + 200ms);
  CHECK(h.end == Handshake::kTimeout);
  int cancel[2];
  REQUIRE(::pipe(cancel) == 0);
  UniqueFd cancel_read(cancel[0]), cancel_write(cancel[1]);
  REQUIRE(::write(cancel[1], "x", 1) == 1);
  SocketPair t;
  Handshake c = TlsAccept(*server, t.server.get(), cancel[0], TlsClock::now() + 60s);
  CHECK(c.end == Handshake::kCancelled);
  // A peer that closes is not a failure of the server.
  SocketPair u;
  u.agency.Reset();
  CHECK(TlsAccept(*server, u.server.get(), -1, TlsClock::now() + 5s).end == Handshake::kClosed);
}

TEST_CASE("contexts refuse missing or mismatched files with the key's name") {
  testing::CertSet certs(2);
  TlsSettings s = certs.Server();
  s.private_key = certs.File("agency-1.key");
  auto mismatched = TlsContext::ForServer(s);
  REQUIRE_FALSE(mismatched);
  CHECK(mismatched.error().message.find("tls.private_key") != std::string::npos);
  CHECK(mismatched.error().message.find("mismatch") != std::string::npos);
  s = certs.Server();
  s.certificate = certs.File("missing.pem");
  auto missing = TlsContext::ForServer(s);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("tls.certificate") != std::string::npos);
  s = certs.Server();
  s.crl = certs.File("agency-1.pem");
  auto bad_crl = TlsContext::ForServer(s);
  REQUIRE_FALSE(bad_crl);
  CHECK(bad_crl.error().message.find("tls.crl") != std::string::npos);
}

}  // namespace
}  // namespace lottery

namespace lottery {
namespace {

TEST_CASE("a reset during the handshake is a lost connection on both sides, never a failure") {
  // The server's parent evicts unidentified connections (server/pending_room.h):
  // the agency must read that as "retry", not as a refused certificate.
  testing::CertSet certs(1);
  auto server = TlsContext::ForServer(certs.Server());
  auto agency = TlsContext::ForAgency(certs.Agency(1), "127.0.0.1");
  REQUIRE(server);
  REQUIRE(agency);
  for (int after_hello = 0; after_hello < 2; ++after_hello) {
    TcpPair s;
    auto reset = std::async(std::launch::async, [&] {
      if (after_hello) {
        char hello[512];
        (void)::recv(s.server.get(), hello, sizeof hello, 0);  // the ClientHello
      }
      linger hard{1, 0};
      ::setsockopt(s.server.get(), SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
      s.server.Reset();  // RST, not FIN
    });
    if (after_hello) std::this_thread::sleep_for(10ms);
    else reset.wait();
    Handshake h = TlsConnect(*agency, s.agency.get(), -1, TlsClock::now() + 5s);
    reset.wait();
    CAPTURE(after_hello);
    CAPTURE(h.error);
    CHECK(h.end == Handshake::kClosed);
  }
}

}  // namespace
}  // namespace lottery
