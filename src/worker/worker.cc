#include "worker/worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <string>

#include "common/crash_point.h"
#include "common/log.h"
#include "storage/bets_file_row.h"
#include "tls/tls_stream.h"
#include "wire/error_codes.h"
#include "worker/worker_session.h"

#include "storage/pg_batch_store.h"

namespace lottery {
namespace {

// Why an error before HELLO succeeded refuses the connection (metrics);
// nothing for errors that are not the peer's doing.
// The refusal the table (wire/error_codes.h) names for `code`, if any.
std::optional<Refusal> RefusalFor(ErrorCode code) {
  const std::string_view label = InfoFor(code).refusal;
  for (std::uint32_t r = 0; r < static_cast<std::uint32_t>(Refusal::kCount); ++r) {
    if (RefusalName(static_cast<Refusal>(r)) == label) return static_cast<Refusal>(r);
  }
  return std::nullopt;
}

// WELCOME for what the segment says of the agency and the round.
Welcome WelcomeFor(const AgencyStanding& standing) {
  Welcome w{standing.last_seq,      standing.finished, standing.bets_stored,
            standing.stored_digest, standing.round,    kRoundOpen};
  if (standing.draw_state == DrawState::kDone) {
    w.round_state = kRoundDrawn;
  } else if (standing.betting_closed) {
    w.round_state = kRoundClosed;
  }
  return w;
}

}  // namespace

bool Worker::ShutdownRequested() {
  if (stopping_) return true;
  if (auto sig = signals_.TakePending()) {
    stopping_ = true;
    replaced_ = *sig == SIGUSR1;
  }
  return stopping_;
}

void Worker::SendStopReason() {
  if (!replaced_) {
    SendError(ErrorCode::kShuttingDown, "server is shutting down");
    return;
  }
  Log(LogLevel::kWarning, "agency_replaced", Outcome::kSuccess,
      "agency: {} | ip: {} | detail: a newer connection proved the same certificate; this one "
      "is closed",
      agency_, peer_);
  SendError(ErrorCode::kReplaced,
            fmt::format("a newer connection authenticated as agency {} took over", agency_));
}

bool Worker::SendBettingClosed() {
  Log(LogLevel::kWarning, "betting_closed", Outcome::kFail,
      "agency: {} | ip: {} | detail: betting closed before this agency said FINISHED; its bets "
      "take no part in the draw",
      agency_, peer_);
  return SendError(ErrorCode::kBettingClosed,
                   fmt::format("betting closed (draw.deadline passed, or the operator closed it) "
                               "before agency {} said FINISHED; its bets take no part in the draw",
                               agency_));
}

SlotClaim Worker::ReplaceHolder(std::uint32_t agency, pid_t holder) {
  Log(LogLevel::kWarning, "agency_replaced", Outcome::kInProgress,
      "agency: {} | ip: {} | old_worker: {} | subject: {} | detail: closing the older connection "
      "of this agency",
      agency, peer_, holder, LogSafe(certificate_->subject));
  ::kill(holder, SIGUSR1);
  // The old worker ends its current frame, flushes its acks and exits;
  // hello_timeout bounds the wait, as it bounds a HELLO.
  const auto deadline = Clock::now() + hello_;
  SlotClaim claim;
  while (true) {
    claim = ClaimAgencySlot(shared_.state(), agency, ::getpid());
    if (claim.holder == 0 || Clock::now() >= deadline) return claim;
    pollfd p{signals_.fd(), POLLIN, 0};
    if (::poll(&p, 1, 10) > 0) return claim;  // this worker is told to stop
  }
}

bool Worker::InputWaiting() const {
  pollfd p{conn_.get(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

bool Worker::Send(const std::string& bytes) {
  if (!FlushAcks()) return false;
  return WriteRaw(bytes);
}

bool Worker::WriteRaw(std::string_view bytes) {
  // Replies go out even while stopping, so the cancel descriptor is not used.
  IoStatus s = WriteAll(*stream_, bytes, -1, stall_);
  if (s != IoStatus::kOk) {
    Log(LogLevel::kWarning, "send_reply", Outcome::kFail, "ip: {} | agency: {} | error: {}", peer_,
        agency_, IoStatusName(s));
    return false;
  }
  return true;
}

bool Worker::SendError(ErrorCode code, std::string message, std::uint32_t bet_index) {
  // A peer that keeps erring on an open connection gets a few lines, then
  // one a second with the count of those left out.
  if (const LogLimiter::Decision d = error_log_.Allow(); d.log) {
    Log(LogLevel::kWarning, "protocol_error", Outcome::kFail,
        "ip: {} | agency: {} | code: {} | error: {}{}", peer_, agency_, ErrorCodeName(code),
        LogSafe(message), d.suppressed > 0 ? fmt::format(" | suppressed: {}", d.suppressed) : "");
  }
  if (!introduced_) {
    if (auto reason = RefusalFor(code)) shared_.state().metrics.Refuse(*reason);
  }
  out_.clear();
  EncodeError(out_, ErrorReply{code, bet_index, std::move(message)});
  bool sent = Send(out_);
  return sent && !ErrorClosesConnection(code);
}

void Worker::RefreshSettings() {
  SharedState& s = shared_.state();
  std::uint32_t generation = s.settings_generation.load(std::memory_order_acquire);
  if (generation == settings_seen_) return;
  RuntimeSettings settings;
  {
    SharedLock lock(s);
    settings = s.settings;
    settings_seen_ = s.settings_generation.load(std::memory_order_relaxed);
  }
  SetLogLevel(settings.log_level);
  stall_ = Millis(settings.read_timeout_ms);
  hello_ = Millis(settings.hello_timeout_ms);
  idle_ = Millis(settings.idle_timeout_ms);
}

void Worker::ReleaseSlot() {
  if (agency_ != 0) ReleaseAgencySlot(shared_.state(), agency_, ::getpid());
}

bool Worker::HandleHello(std::string_view payload) {
  auto id = DecodeHello(payload);
  if (!id) return SendError(ErrorCode::kMalformed, id.error().message);
  if (agency_ != 0) return SendError(ErrorCode::kOutOfOrder, "HELLO was already sent");
  if (certificate_ && certificate_->agency != *id) {
    // The certificate is the proof: a HELLO is only a claim.
    std::string why = certificate_->agency == 0
                          ? fmt::format("speaks for no agency{}",
                                        certificate_->problem.empty()
                                            ? std::string()
                                            : fmt::format(" ({})", certificate_->problem))
                          : fmt::format("is agency {}'s", certificate_->agency);
    return SendError(ErrorCode::kNotAuthorized,
                     fmt::format("the certificate of this connection ({}) {}; it cannot say "
                                 "HELLO as agency {}",
                                 certificate_->subject, why, *id));
  }
  if (*id < 1 || *id > shared_.agencies()) {
    return SendError(ErrorCode::kBadAgency,
                     fmt::format("agency {} is outside 1..{}", *id, shared_.agencies()));
  }
  SlotClaim claim = ClaimAgencySlot(shared_.state(), *id, ::getpid());
  if (claim.holder != 0 && certificate_) claim = ReplaceHolder(*id, claim.holder);
  if (claim.holder != 0) {
    return SendError(ErrorCode::kAgencyBusy,
                     fmt::format("agency {} is already connected (worker {})", *id, claim.holder));
  }
  // No other worker appends for the agency now. One that died mid-append is
  // settled first, and what is stored is made durable (it counts as
  // acknowledged), so that WELCOME reports what is really stored.
  Status settled = store_->Settle(shared_, *id);
  if (!settled) {
    ReleaseAgencySlot(shared_.state(), *id, ::getpid());
    return SendError(ErrorCode::kStorageFailed,
                     fmt::format("stored batches not settled: {}", settled.error().message));
  }
  const AgencyStanding standing = ReadAgencyStanding(shared_.state(), *id);
  const Welcome welcome = WelcomeFor(standing);
  agency_ = *id;
  stored_seq_ = standing.last_seq;
  stored_bets_ = standing.bets_stored;
  agency_column_ = AgencyColumn(agency_);
  finished_ = welcome.finished;
  if (!finished_ && standing.betting_closed) return SendBettingClosed();
  introduced_ = true;
  Log(LogLevel::kInfo, "agency_connected", Outcome::kSuccess,
      "agency: {} | ip: {} | last_seq: {} | finished: {} | bets_stored: {}", agency_, peer_,
      welcome.last_seq, welcome.finished, welcome.bets_stored);
  out_.clear();
  EncodeWelcome(out_, welcome);
  return Send(out_);
}

bool Worker::HandleEcho(std::string_view payload) {
  // The payload is the peer's: logged escaped and cut to 64 bytes.
  Log(LogLevel::kInfo, "receive_message", Outcome::kSuccess, "ip: {} | msg: {}", peer_,
      LogSafe(payload, kEchoLogBytes));
  out_.clear();
  EncodeEchoReply(out_, payload);
  return Send(out_);
}

namespace {

// The worker's storage for round `round`: the bets file, or the committers.
Result<std::unique_ptr<BatchStorage>> OpenStorage(const WorkerOptions& options,
                                                  std::uint64_t round) {
  if (!options.pg_committer.empty()) {
    return std::make_unique<PgBatchStore>(options.pg_committer, round);
  }
  auto store = BetStore::Open(options.storage_path, options.storage_sync);
  if (!store) return std::unexpected(store.error());
  store->BindRound(round);
  return std::make_unique<BetStore>(std::move(*store));
}

}  // namespace

int RunWorker(UniqueFd connection, const WorkerOptions& options, SharedSegment& shared,
              int winners_fd) {
  SetLogLevel(options.log_level);
  // Acks are small writes behind which the agency waits: Nagle's algorithm
  // would hold them for the peer's delayed ACK (tens of milliseconds).
  int one = 1;
  ::setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  EnableKeepAlive(connection.get());
  // SIGUSR1: a newer connection of the same agency takes over (ReplaceHolder).
  auto signals = SignalFd::Create({SIGTERM, SIGINT, SIGUSR1});
  if (!signals) {
    Log(LogLevel::kError, "worker_start", Outcome::kFail, "error: {}", signals.error().message);
    return 1;
  }
  std::string peer = PeerAddress(connection.get());
  std::unique_ptr<ByteStream> stream;
  std::optional<CertificateIdentity> certificate;
  WorkerOptions opts = options;
  opts.hello_deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(options.hello_timeout);
  if (options.tls != nullptr) {
    // In the worker, not the parent: a slow or hostile handshake costs this
    // connection's process only, and hello_timeout bounds it.
    Handshake hs = TlsAccept(*options.tls, connection.get(), signals->fd(), opts.hello_deadline);
    if (hs.end != Handshake::kDone) {
      Log(LogLevel::kWarning, "tls_handshake", Outcome::kFail, "ip: {} | end: {} | error: {}", peer,
          HandshakeEndName(hs.end), LogSafe(hs.error));
      if (hs.end != Handshake::kCancelled) {
        shared.state().metrics.Refuse(hs.end == Handshake::kNotTls ? Refusal::kTlsRequired
                                                                   : Refusal::kTlsHandshake);
      }
      if (hs.end == Handshake::kNotTls) {
        // Nothing was consumed: a plaintext agency learns why in its own terms.
        std::string reply;
        EncodeError(reply, ErrorReply{ErrorCode::kTlsRequired, kNoBetIndex,
                                      "this server requires TLS (tls.mode = required): configure "
                                      "the agency's tls.* keys (docs/SECURITY.md)"});
        PlainStream plain(connection.get());
        (void)WriteAll(plain, reply, -1, Millis(1000));
      }
      return 0;
    }
    certificate = hs.stream->PeerIdentity();
    Log(LogLevel::kInfo, "tls_handshake", Outcome::kSuccess, "ip: {} | subject: {} | agency: {}",
        peer, LogSafe(certificate->subject), certificate->agency);
    stream = std::move(hs.stream);
  } else {
    stream = std::make_unique<PlainStream>(connection.get());
  }
  // Read before the files are opened: if the next round opens in between,
  // the store's appends fail instead of reaching the archived file.
  const std::uint64_t round = shared.state().round.load(std::memory_order_acquire);
  auto store = OpenStorage(options, round);
  if (!store) {
    Log(LogLevel::kError, "worker_start", Outcome::kFail, "error: {}", store.error().message);
    return 1;
  }
  Worker worker(std::move(connection), std::move(stream), std::move(certificate), std::move(peer),
                opts, shared, winners_fd, std::move(*signals), std::move(*store));
  return worker.Serve();
}

}  // namespace lottery
