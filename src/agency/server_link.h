// The agency's side of a connection to the server: connecting with retries,
// the HELLO/WELCOME exchange, frames out and in, what an ERROR reply means,
// and the exit code each outcome gives. Owned by the running mode; it
// borrows the configuration and the signal descriptor, which must outlive it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agency/agency_config.h"
#include "common/net.h"
#include "common/signals.h"
#include "common/unique_fd.h"
#include "tls/tls_stream.h"
#include "wire/frame_io.h"
#include "wire/protocol.h"

namespace lottery {

// Whether ServerLink::Ensure introduces the agency (HELLO) on a new
// connection, or leaves that to the caller.
enum class LinkHello { kSend, kSkip };

// Why a step of the conversation could not complete.
enum class Step {
  kDone,
  kRetry,          // the connection broke or the server was busy: reconnect and redo
  kCancelled,      // SIGTERM/SIGINT
  kUnavailable,    // the server stayed unreachable for connect_timeout
  kRejected,       // the server refused the data (INVALID_BET)
  kMismatch,       // a re-sent batch differs from the stored one (REPLAY_MISMATCH): stop
  kUnknownId,      // the server serves agencies 1..N and this id is not among them
  kIdTaken,        // another process kept this agency id connected for connect_timeout
  kClosed,         // betting is closed for this agency: it already said FINISHED
  kRefused,        // the server refused this agency's certificate (revoked, expired, unknown CA...)
  kMisconfigured,  // the server requires TLS and this agency runs without it
  kFatal,          // a protocol error that retrying cannot fix
};

// The pause before a request is sent again after an ERROR that asks for a
// retry (the server is busy, its round is not open yet).
inline constexpr Millis kRetryPause{200};

// The agency's link to the server: connects with backoff, introduces itself,
// and turns every failure into "reconnect and redo" until connect_timeout
// passes without progress. Owns the socket and the stream over it (TLS or
// plain). With several server addresses it stays on the one that works and,
// once that fails, tries the next in turn (after the last, the first again).
class ServerLink {
 public:
  // `tls` (nullptr: plaintext) must outlive the link; `endpoints` is not
  // empty.
  ServerLink(const AgencyConfig& config, const TlsContext* tls, std::vector<HostPort> endpoints,
             SignalFd& signals)
      : config_(config),
        tls_(tls),
        endpoints_(std::move(endpoints)),
        signals_(signals),
        stall_(std::chrono::duration_cast<Millis>(config.read_timeout)) {}

  // Connects (and, with LinkHello::kSend, introduces the agency) unless connected.
  // After a lost connection it starts at the next address. A failed attempt
  // moves to the next address at once; after a whole pass over the addresses
  // it waits with exponential backoff. Gives up once connect_timeout has
  // passed since the last time the link worked.
  Step Ensure(LinkHello hello);
  // Closes a broken connection (logged as a failure) ...
  void Drop(std::string_view why);
  // ... or ends one whose work is done.
  void Close(std::string_view why);
  bool connected() const { return fd_.valid(); }
  // Connections that reached WELCOME (or, for echo, the handshake) so far.
  std::uint64_t sessions() const { return sessions_; }
  // The TLS handshake after connecting: kDone, kRetry (the server refused
  // the connection before TLS, or went away), kCancelled or kFatal.
  Step StartTls();

  // Sends a frame and reads one reply frame into `reply`. `idle` bounds the
  // wait for the reply (std::nullopt: wait as long as it takes).
  Step Exchange(const std::string& request, Frame& reply, std::optional<Millis> idle);
  // The two halves of Exchange, for pipelined batches.
  Step Send(std::string_view request);
  // Sends several frames, in order, in as few writes as the stream allows.
  Step SendAll(std::span<std::string_view> frames);
  Step Receive(Frame& reply, std::optional<Millis> idle);
  // Reads one more frame (for multi-frame replies).
  Step ReadMore(Frame& reply);

  const Welcome& welcome() const { return welcome_; }
  // FINISHED was acked on this connection.
  void MarkFinished() { welcome_.finished = true; }
  void MarkProgress() { last_ok_ = Clock::now(); }
  // The server acknowledged batch `seq`: a server that later says it holds
  // less has lost acknowledged bets (a new round) and must not get them twice.
  void MarkAcked(std::uint64_t seq) { acked_seq_ = std::max(acked_seq_, seq); }
  // Whether connect_timeout has passed since the last progress; if so,
  // logs that the server did not answer and closes the connection.
  bool GaveUp();
  bool cancelled() const { return cancelled_; }
  // Sleeps, waking early on SIGTERM/SIGINT. Returns false when cancelled.
  bool Sleep(Millis duration);

 private:
  Step Hello();
  // Ensure's steps. Takes a new TCP connection: TLS, then HELLO when
  // `hello`. Returns the step Ensure ends with, or nullopt when this
  // address failed and the next one is tried.
  std::optional<Step> Open(UniqueFd conn, LinkHello hello, int attempt);
  // connect_timeout passed at `now` after `attempt` attempts: logs why
  // (another process holds the agency, or no server answered).
  Step GiveUpConnecting(int attempt, Clock::time_point now);
  // Maps an I/O result to a step, dropping the connection when it broke.
  Step StepAfter(IoStatus status, std::string_view what);
  // A reply that is no frame of the protocol (an unknown first byte, a
  // frame beyond the limit): logged, the connection closed, kFatal.
  Step BrokeProtocol(std::uint8_t type);

  // Ends the connection: stream first (its close_notify), then the socket;
  // the next Ensure starts at the next address.
  void Disconnect();
  // The address connected to, or to try next.
  const HostPort& endpoint() const { return endpoints_[at_]; }
  // Every address, "host:port,host:port", for the logs.
  std::string EndpointList() const;
  // The server answered the ClientHello in plaintext (handshake kNotTls):
  // reads its ERROR frame, starting with the bytes the handshake consumed.
  // TOO_MANY_CONNECTIONS sets full_server_. kRetry.
  Step RefusedInPlaintext(const Handshake& hs);
  // The wait before the next attempt: `backoff`, jittered to 50..150% when
  // the server said it was full (logged so), cut to what is left.
  Millis NextWait(Millis backoff, Millis left);

  const AgencyConfig& config_;
  const TlsContext* tls_;
  std::vector<HostPort> endpoints_;
  std::size_t at_ = 0;  // endpoints_[at_]: the address in use
  // The connection was lost (not closed after its work): move on to the
  // next address before connecting again.
  bool lost_ = false;
  SignalFd& signals_;
  Millis stall_;
  UniqueFd fd_;
  std::unique_ptr<ByteStream> stream_;
  TlsStream* tls_stream_ = nullptr;  // stream_, when it is TLS
  std::optional<FrameReader> reader_;
  Welcome welcome_;
  std::uint64_t acked_seq_ = 0;
  Clock::time_point last_ok_ = Clock::now();
  bool cancelled_ = false;
  // The last HELLO was refused because another connection holds this id
  // (its text, as the server said it); cleared by a WELCOME.
  std::optional<std::string> taken_;
  // An attempt of this pass was refused with TOO_MANY_CONNECTIONS (before
  // TLS): that server's "host:port"; empty when none was.
  std::string full_server_;
  std::string out_;
  std::uint64_t sessions_ = 0;
  // The handshake's duration until the server's first frame confirms it.
  std::optional<double> handshake_ms_;
};

// Interprets an ERROR reply and logs it: kRejected for refused bets, kRetry
// (the connection dropped) for transient server-side states, else kFatal.
Step HandleErrorReply(ServerLink& link, const AgencyConfig& config, std::string_view payload,
                      std::string_view during);

// The process exit code for how a mode ended (sysexits, common/exit_codes.h).
int ExitCodeFor(Step s);

}  // namespace lottery
