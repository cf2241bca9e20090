#include "agency/server_link.h"

#include <poll.h>
#include <sys/socket.h>

#include <cmath>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "wire/error_codes.h"

namespace lottery {

bool ServerLink::Sleep(Millis duration) {
  pollfd p{signals_.fd(), POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, duration.count())));
  if (rc > 0) cancelled_ = true;
  return !cancelled_;
}

void ServerLink::Disconnect() {
  reader_.reset();
  tls_stream_ = nullptr;
  stream_.reset();
  fd_.Reset();
  lost_ = true;
}

void ServerLink::Close(std::string_view why) {
  if (!fd_.valid()) return;
  Log(LogLevel::kInfo, "disconnect", Outcome::kSuccess, "client_id: {} | reason: {}", config_.id,
      why);
  Disconnect();
  lost_ = false;
}

std::string ServerLink::EndpointList() const {
  std::string list;
  for (const HostPort& e : endpoints_) {
    list += fmt::format("{}{}:{}", list.empty() ? "" : ",", e.host, e.port);
  }
  return list;
}

void ServerLink::Drop(std::string_view why) {
  if (!fd_.valid()) return;
  Log(LogLevel::kWarning, "connection_lost", Outcome::kFail, "client_id: {} | error: {}",
      config_.id, why);
  Disconnect();
}

Step ServerLink::StartTls() {
  if (tls_ == nullptr) {
    stream_ = std::make_unique<PlainStream>(fd_.get());
    reader_.emplace(*stream_, signals_.fd());
    return Step::kDone;
  }
  const auto started = Clock::now();
  Handshake hs = TlsConnect(*tls_, fd_.get(), signals_.fd(), started + stall_,
                            config_.ServerNameFor(endpoint()));
  switch (hs.end) {
    case Handshake::kDone:
      // Logged as a success once the server's first frame shows that it
      // accepted this agency's certificate too (TLS 1.3 checks it later).
      handshake_ms_ = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
      tls_stream_ = hs.stream.get();
      stream_ = std::move(hs.stream);
      reader_.emplace(*stream_, signals_.fd());
      return Step::kDone;
    case Handshake::kCancelled:
      cancelled_ = true;
      Disconnect();
      return Step::kCancelled;
    case Handshake::kNotTls: return RefusedInPlaintext(hs);
    case Handshake::kFailed:
      // The server's certificate does not verify (wrong CA, wrong name,
      // expired): talking to it would hand this agency's bets to a stranger.
      Log(LogLevel::kError, "tls_handshake", Outcome::kFail,
          "client_id: {} | server: {}:{} | server_name: {} | error: {}", config_.id,
          endpoint().host, endpoint().port, config_.ServerNameFor(endpoint()), LogSafe(hs.error));
      Disconnect();
      return Step::kFatal;
    default:
      // Not TLS (the server refused the connection in plaintext before any
      // handshake, as it does when full), closed or too slow: try again.
      Drop(fmt::format("TLS handshake: {}: {}", HandshakeEndName(hs.end), LogSafe(hs.error)));
      return Step::kRetry;
  }
}

namespace {

// Reconnection backoff: the first pause after a full pass over the
// addresses, doubled after each pass up to the last.
constexpr Millis kFirstBackoff{100};
constexpr Millis kMaxBackoff{2000};
// One connect attempt waits at least this long (a connect_timeout nearly
// spent still gets a real try) and at most that long (the next address
// gets its turn).
constexpr Millis kMinConnectAttempt{100};
constexpr Millis kMaxConnectAttempt{5000};

// The plaintext frame a server sent instead of TLS: `bytes` already read,
// the rest from `fd` within a second. nullopt when it is no ERROR frame.
std::optional<ErrorReply> ReadPlaintextError(int fd, std::string bytes) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (true) {
    if (!bytes.empty() &&
        static_cast<std::uint8_t>(bytes[0]) != static_cast<std::uint8_t>(MessageType::kError)) {
      return std::nullopt;
    }
    if (bytes.size() >= kFrameHeaderSize) {
      FrameHeader h = DecodeFrameHeader(bytes);
      if (h.length > kMaxPayloadSize) return std::nullopt;
      if (bytes.size() >= kFrameHeaderSize + h.length) {
        auto e = DecodeError(std::string_view(bytes).substr(kFrameHeaderSize, h.length));
        return e ? std::optional<ErrorReply>(*e) : std::nullopt;
      }
    }
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return std::nullopt;
    char buf[512];
    ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n <= 0) return std::nullopt;
    bytes.append(buf, static_cast<std::size_t>(n));
  }
}

}  // namespace

Step ServerLink::RefusedInPlaintext(const Handshake& hs) {
  // The parent refuses before any TLS, in plaintext (docs/PROTOCOL.md); the
  // handshake may have read the frame's first bytes as a TLS record header.
  std::optional<ErrorReply> e = ReadPlaintextError(fd_.get(), hs.first_bytes);
  if (e && e->code == ErrorCode::kTooManyConnections) {
    full_server_ = fmt::format("{}:{}", endpoint().host, endpoint().port);
    Disconnect();
    return Step::kRetry;
  }
  Drop(e ? fmt::format("the server refused the connection before TLS: {}: {}",
                       ErrorCodeName(e->code), LogSafe(e->message))
         : fmt::format("TLS handshake: {}", LogSafe(hs.error)));
  return Step::kRetry;
}

Millis ServerLink::NextWait(Millis backoff, Millis left) {
  if (full_server_.empty()) return std::min(backoff, left);
  const std::string full = std::exchange(full_server_, {});
  // Jitter: agencies refused together do not come back together.
  static thread_local std::minstd_rand rng{std::random_device{}()};
  std::uniform_real_distribution<double> factor(0.5, 1.5);
  const Millis wait = std::min(Millis(static_cast<long long>(backoff.count() * factor(rng))), left);
  Log(LogLevel::kWarning, "connect", Outcome::kFail,
      "client_id: {} | server: {} | error: server full (TOO_MANY_CONNECTIONS): retrying in {} s",
      config_.id, full, fmt::format("{:.1f}", wait.count() / 1000.0));
  return wait;
}

std::optional<Step> ServerLink::Open(UniqueFd conn, LinkHello hello, int attempt) {
  fd_ = std::move(conn);
  Log(LogLevel::kInfo, "connect", Outcome::kSuccess, "client_id: {} | server: {}:{} | attempt: {}",
      config_.id, endpoint().host, endpoint().port, attempt);
  Step tls = StartTls();
  if (tls == Step::kCancelled || tls == Step::kFatal) return tls;
  if (tls == Step::kDone && hello == LinkHello::kSkip) {
    // A connection is no answer: the caller marks progress on a reply.
    ++sessions_;
    return Step::kDone;
  }
  Step s = tls == Step::kDone ? Hello() : Step::kRetry;
  if (s == Step::kDone) {
    MarkProgress();
    ++sessions_;
    return s;
  }
  if (s != Step::kRetry) return s;
  return std::nullopt;
}

Step ServerLink::GiveUpConnecting(int attempt, Clock::time_point now) {
  // Tenths of a second: what the log states as the time actually spent.
  const Seconds spent(std::round(Seconds(now - last_ok_).count() * 10) / 10);
  if (taken_) {
    Log(LogLevel::kError, "hello", Outcome::kFail,
        "client_id: {} | error: agency {} stayed connected from another connection for {} "
        "({}); another agency process with the same id?",
        config_.id, config_.id, FormatDuration(spent), *taken_);
    return Step::kIdTaken;
  }
  Log(LogLevel::kError, "connect", Outcome::kFail,
      "client_id: {} | server: {} | attempts: {} | error: server unreachable for {}", config_.id,
      EndpointList(), attempt, FormatDuration(spent));
  return Step::kUnavailable;
}

Step ServerLink::Ensure(LinkHello hello) {
  if (fd_.valid()) return Step::kDone;
  if (std::exchange(lost_, false)) at_ = (at_ + 1) % endpoints_.size();
  const auto give_up =
      last_ok_ + std::chrono::duration_cast<Clock::duration>(config_.connect_timeout);
  Millis backoff = kFirstBackoff;
  int attempt = 0;
  std::size_t tried = 0;  // addresses tried in this pass
  while (true) {
    ++attempt;
    ++tried;
    auto left = std::chrono::duration_cast<Millis>(give_up - Clock::now());
    auto conn = ConnectTcp(endpoint(), std::clamp(left, kMinConnectAttempt, kMaxConnectAttempt));
    if (conn) {
      if (std::optional<Step> s = Open(std::move(*conn), hello, attempt)) return *s;
    } else {
      Log(LogLevel::kDebug, "connect", Outcome::kFail,
          "client_id: {} | server: {}:{} | attempt: {} | error: {}", config_.id, endpoint().host,
          endpoint().port, attempt, conn.error().message);
    }
    // This address failed: the next one, at once unless the pass is over.
    lost_ = false;
    at_ = (at_ + 1) % endpoints_.size();
    // Retry until connect_timeout has really passed: the last wait is cut
    // to what is left, not skipped.
    const auto now = Clock::now();
    if (now >= give_up) return GiveUpConnecting(attempt, now);
    if (tried < endpoints_.size()) continue;
    tried = 0;
    const Millis wait =
        NextWait(backoff, std::chrono::duration_cast<Millis>(give_up - now) + Millis(1));
    if (!Sleep(wait)) return Step::kCancelled;
    backoff = std::min(backoff * 2, kMaxBackoff);
  }
}

Step ServerLink::Hello() {
  out_.clear();
  EncodeHello(out_, config_.id);
  Frame reply;
  Step s = Exchange(out_, reply, stall_);
  if (s != Step::kDone) return s;
  if (reply.type == static_cast<std::uint8_t>(MessageType::kWelcome)) {
    auto w = DecodeWelcome(reply.payload);
    if (!w) {
      Drop(w.error().message);
      return Step::kFatal;
    }
    welcome_ = *w;
    taken_.reset();
    if (welcome_.last_seq < acked_seq_) {
      Log(LogLevel::kError, "hello", Outcome::kFail,
          "client_id: {} | last_seq: {} | acked_seq: {} | error: the server no longer holds "
          "batches it acknowledged (it started a new round); not sending them again",
          config_.id, welcome_.last_seq, acked_seq_);
      Drop("the server lost acknowledged batches");
      return Step::kFatal;
    }
    Log(LogLevel::kInfo, "hello", Outcome::kSuccess, "client_id: {} | last_seq: {} | finished: {}",
        config_.id, welcome_.last_seq, welcome_.finished);
    return Step::kDone;
  }
  if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
    // AGENCY_BUSY, kept for the log should it last connect_timeout.
    auto e = DecodeError(reply.payload);
    // A plaintext server that is full says so in reply to HELLO.
    if (e && e->code == ErrorCode::kTooManyConnections) {
      full_server_ = fmt::format("{}:{}", endpoint().host, endpoint().port);
    }
    if (e && e->code == ErrorCode::kAgencyBusy) {
      taken_ = LogSafe(e->message);
    } else {
      taken_.reset();
    }
    return HandleErrorReply(*this, config_, reply.payload, "hello");
  }
  Drop(fmt::format("unexpected {} in reply to HELLO", MessageTypeName(reply.type)));
  return Step::kFatal;
}

Step ServerLink::StepAfter(IoStatus status, std::string_view what) {
  if (status == IoStatus::kOk) return Step::kDone;
  if (status == IoStatus::kCancelled) {
    cancelled_ = true;
    return Step::kCancelled;
  }
  if (tls_stream_ != nullptr && tls_stream_->refused_by_peer()) {
    // In TLS 1.3 the server checks the agency's certificate after the
    // handshake: its verdict arrives as an alert on the first read.
    Log(LogLevel::kError, "tls_handshake", Outcome::kFail,
        "client_id: {} | error: the server refused this agency's certificate ({}): {}", config_.id,
        config_.tls.certificate, LogSafe(tls_stream_->error()));
    Disconnect();
    return Step::kRefused;
  }
  std::string detail = reader_ && !reader_->error().empty() ? ": " + reader_->error() : "";
  Drop(fmt::format("{} failed: {}{}", what, IoStatusName(status), LogSafe(detail)));
  return Step::kRetry;
}

Step ServerLink::Exchange(const std::string& request, Frame& reply, std::optional<Millis> idle) {
  if (Step s = Send(request); s != Step::kDone) return s;
  return Receive(reply, idle);
}

Step ServerLink::Send(std::string_view request) {
  return StepAfter(WriteAll(*stream_, request, signals_.fd(), stall_), "send");
}

Step ServerLink::SendAll(std::span<std::string_view> frames) {
  return StepAfter(WriteAll(*stream_, frames, signals_.fd(), stall_), "send");
}

Step ServerLink::Receive(Frame& reply, std::optional<Millis> idle) {
  const IoStatus status = reader_->Read(reply, idle, stall_);
  if (status == IoStatus::kTooLarge ||
      (status == IoStatus::kOk && !IsKnownMessageType(reply.type))) {
    return BrokeProtocol(reply.type);
  }
  const Step s = StepAfter(status, "receive");
  if (s == Step::kDone && handshake_ms_) {
    Log(LogLevel::kInfo, "tls_handshake", Outcome::kSuccess,
        "client_id: {} | server_name: {} | handshake_ms: {:.2f}", config_.id,
        config_.ServerNameFor(endpoint()), *handshake_ms_);
    handshake_ms_.reset();
  }
  return s;
}

Step ServerLink::BrokeProtocol(std::uint8_t type) {
  const std::string what =
      IsKnownMessageType(type)
          ? fmt::format("a {} frame of {} bytes, beyond the limit of {}", MessageTypeName(type),
                        reader_->header().length, kMaxFrameSize)
          : fmt::format("its first byte 0x{:02x} is no message type", type);
  Log(LogLevel::kError, "receive", Outcome::kFail,
      "client_id: {} | server: {}:{} | error: the server broke the protocol: {}", config_.id,
      endpoint().host, endpoint().port, what);
  Disconnect();
  return Step::kFatal;
}

bool ServerLink::GaveUp() {
  const auto now = Clock::now();
  if (now - last_ok_ < config_.connect_timeout) return false;
  const Seconds spent(std::round(Seconds(now - last_ok_).count() * 10) / 10);
  Log(LogLevel::kError, "connect", Outcome::kFail,
      "client_id: {} | server: {}:{} | error: the server did not answer for {}", config_.id,
      endpoint().host, endpoint().port, FormatDuration(spent));
  Disconnect();
  return true;
}

Step ServerLink::ReadMore(Frame& reply) { return Receive(reply, stall_); }

namespace {

Step StepFor(AgencyReaction r) {
  switch (r) {
    case AgencyReaction::kRetry: return Step::kRetry;
    case AgencyReaction::kRejected: return Step::kRejected;
    case AgencyReaction::kMismatch: return Step::kMismatch;
    case AgencyReaction::kUnknownId: return Step::kUnknownId;
    case AgencyReaction::kIdTaken: return Step::kIdTaken;
    case AgencyReaction::kClosed: return Step::kClosed;
    case AgencyReaction::kRefused: return Step::kRefused;
    case AgencyReaction::kMisconfigured: return Step::kMisconfigured;
    case AgencyReaction::kFatal: return Step::kFatal;
  }
  return Step::kFatal;
}

}  // namespace

Step HandleErrorReply(ServerLink& link, const AgencyConfig& config, std::string_view payload,
                      std::string_view during) {
  auto e = DecodeError(payload);
  if (!e) {
    link.Drop(e.error().message);
    return Step::kFatal;
  }
  // One row of wire/error_codes.h decides, whenever the error comes.
  const ErrorCodeInfo& info = InfoFor(e->code);
  const Step step = StepFor(info.agency);
  const bool transient = step == Step::kRetry;
  Log(transient || step == Step::kRejected ? LogLevel::kWarning : LogLevel::kError, during,
      Outcome::kFail, "client_id: {} | code: {} | error: {}{}", config.id, info.name,
      LogSafe(e->message),
      info.agency_hint.empty() ? std::string()
                               : "; " + fmt::format(fmt::runtime(info.agency_hint), config.id));
  // Refused bets keep the connection (the server keeps it too).
  if (step != Step::kRejected) link.Drop(LogSafe(e->message));
  return step;
}

int ExitCodeFor(Step s) {
  switch (s) {
    case Step::kDone: return kExitOk;
    case Step::kCancelled: return kExitOk;
    case Step::kUnavailable: return kExitUnavailable;
    case Step::kRejected: return kExitDataErr;
    case Step::kMismatch: return kExitDataErr;
    case Step::kUnknownId: return kExitNoUser;
    case Step::kIdTaken: return kExitTempFail;
    case Step::kClosed: return kExitNoPerm;
    case Step::kRefused: return kExitNoPerm;
    case Step::kMisconfigured: return kExitConfig;
    case Step::kRetry:
    case Step::kFatal: return kExitProtocol;
  }
  return kExitSoftware;
}

}  // namespace lottery
