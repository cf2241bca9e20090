#include "agency.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "batch_window.h"
#include "bet.h"
#include "csv.h"
#include "frame_io.h"
#include "latency_histogram.h"
#include "log.h"
#include "net.h"
#include "peak_rss.h"
#include "protocol.h"
#include "exit_codes.h"
#include "signals.h"
#include "unique_fd.h"

namespace lottery {
namespace {

using Clock = std::chrono::steady_clock;

// Why a step of the conversation could not complete.
enum class Step {
  kDone,
  kRetry,        // the connection broke or the server was busy: reconnect and redo
  kCancelled,    // SIGTERM/SIGINT
  kUnavailable,  // the server stayed unreachable for connect_timeout
  kRejected,     // the server refused the data (INVALID_BET)
  kFatal,        // a protocol or configuration error that retrying cannot fix
};

// The agency's link to the server: connects with backoff, introduces itself,
// and turns every failure into "reconnect and redo" until connect_timeout
// passes without progress. Owns the socket.
class ServerLink {
 public:
  ServerLink(const AgencyConfig& config, HostPort endpoint, SignalFd& signals)
      : config_(config),
        endpoint_(std::move(endpoint)),
        signals_(signals),
        stall_(std::chrono::duration_cast<Millis>(config.read_timeout)) {}

  // Connects (and, when `hello`, introduces the agency) unless connected.
  // Retries with exponential backoff until connect_timeout has passed since
  // the last time the link worked.
  Step Ensure(bool hello);
  // Closes a broken connection (logged as a failure) ...
  void Drop(std::string_view why);
  // ... or ends one whose work is done.
  void Close(std::string_view why);
  bool connected() const { return fd_.valid(); }

  // Sends a frame and reads one reply frame into `reply`. `idle` bounds the
  // wait for the reply (std::nullopt: wait as long as it takes).
  Step Exchange(const std::string& request, Frame& reply, std::optional<Millis> idle);
  // The two halves of Exchange, for pipelined batches.
  Step Send(std::string_view request);
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
  bool cancelled() const { return cancelled_; }
  // Sleeps, waking early on SIGTERM/SIGINT. Returns false when cancelled.
  bool Sleep(Millis duration);

 private:
  Step Hello();
  // Maps an I/O result to a step, dropping the connection when it broke.
  Step Outcome(IoStatus status, std::string_view what);

  const AgencyConfig& config_;
  HostPort endpoint_;
  SignalFd& signals_;
  Millis stall_;
  UniqueFd fd_;
  std::optional<FrameReader> reader_;
  Welcome welcome_;
  std::uint64_t acked_seq_ = 0;
  Clock::time_point last_ok_ = Clock::now();
  bool cancelled_ = false;
  std::string out_;
};

bool ServerLink::Sleep(Millis duration) {
  pollfd p{signals_.fd(), POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(std::max<long long>(0, duration.count())));
  if (rc > 0) cancelled_ = true;
  return !cancelled_;
}

void ServerLink::Close(std::string_view why) {
  if (!fd_.valid()) return;
  Log(LogLevel::kInfo, "disconnect", Outcome::kSuccess, "client_id: {} | reason: {}", config_.id, why);
  reader_.reset();
  fd_.Reset();
}

void ServerLink::Drop(std::string_view why) {
  if (!fd_.valid()) return;
  Log(LogLevel::kWarning, "connection_lost", Outcome::kFail, "client_id: {} | error: {}", config_.id,
      why);
  reader_.reset();
  fd_.Reset();
}

Step ServerLink::Ensure(bool hello) {
  if (fd_.valid()) return Step::kDone;
  const auto give_up =
      last_ok_ + std::chrono::duration_cast<Clock::duration>(config_.connect_timeout);
  Millis backoff{100};
  int attempt = 0;
  while (true) {
    ++attempt;
    auto left = std::chrono::duration_cast<Millis>(give_up - Clock::now());
    auto conn = ConnectTcp(endpoint_, std::clamp(left, Millis(100), Millis(5000)));
    if (conn) {
      fd_ = std::move(*conn);
      reader_.emplace(fd_.get(), signals_.fd());
      Log(LogLevel::kInfo, "connect", Outcome::kSuccess, "client_id: {} | server: {}:{} | attempt: {}",
          config_.id, endpoint_.host, endpoint_.port, attempt);
      if (!hello) {
        MarkProgress();
        return Step::kDone;
      }
      Step s = Hello();
      if (s == Step::kDone) {
        MarkProgress();
        return s;
      }
      if (s != Step::kRetry) return s;
    } else {
      Log(LogLevel::kDebug, "connect", Outcome::kFail, "client_id: {} | attempt: {} | error: {}",
          config_.id, attempt, conn.error().message);
    }
    if (Clock::now() + backoff >= give_up) {
      Log(LogLevel::kError, "connect", Outcome::kFail,
          "client_id: {} | server: {}:{} | error: server unreachable for {}", config_.id,
          endpoint_.host, endpoint_.port, FormatDuration(config_.connect_timeout));
      return Step::kUnavailable;
    }
    if (!Sleep(backoff)) return Step::kCancelled;
    backoff = std::min(backoff * 2, Millis(2000));
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
    auto e = DecodeError(reply.payload);
    std::string message = e ? e->message : e.error().message;
    bool busy = e && (e->code == ErrorCode::kAgencyBusy || e->code == ErrorCode::kShuttingDown ||
                      e->code == ErrorCode::kTooManyConnections);
    Drop(message);
    if (busy) return Step::kRetry;  // the old connection's worker is still going away
    Log(LogLevel::kError, "hello", Outcome::kFail, "client_id: {} | error: {}", config_.id, message);
    return Step::kFatal;
  }
  Drop(fmt::format("unexpected {} in reply to HELLO", MessageTypeName(reply.type)));
  return Step::kFatal;
}

Step ServerLink::Outcome(IoStatus status, std::string_view what) {
  if (status == IoStatus::kOk) return Step::kDone;
  if (status == IoStatus::kCancelled) {
    cancelled_ = true;
    return Step::kCancelled;
  }
  Drop(fmt::format("{} failed: {}", what, IoStatusName(status)));
  return Step::kRetry;
}

Step ServerLink::Exchange(const std::string& request, Frame& reply, std::optional<Millis> idle) {
  if (Step s = Send(request); s != Step::kDone) return s;
  return Receive(reply, idle);
}

Step ServerLink::Send(std::string_view request) {
  return Outcome(WriteAll(fd_.get(), request, signals_.fd(), stall_), "send");
}

Step ServerLink::Receive(Frame& reply, std::optional<Millis> idle) {
  return Outcome(reader_->Read(reply, idle, stall_), "receive");
}

Step ServerLink::ReadMore(Frame& reply) { return Receive(reply, stall_); }

// Interprets an ERROR reply; logs it. kRetry for transient server-side states.
Step HandleErrorReply(ServerLink& link, const AgencyConfig& config, std::string_view payload,
                      std::string_view during) {
  auto e = DecodeError(payload);
  if (!e) {
    link.Drop(e.error().message);
    return Step::kFatal;
  }
  Log(LogLevel::kWarning, during, Outcome::kFail, "client_id: {} | code: {} | error: {}", config.id,
      ErrorCodeName(e->code), e->message);
  switch (e->code) {
    case ErrorCode::kInvalidBet:
      return Step::kRejected;
    case ErrorCode::kStorageFailed:
    case ErrorCode::kDrawCancelled:
    case ErrorCode::kShuttingDown:
    case ErrorCode::kTimeout:
    case ErrorCode::kAgencyBusy:
    case ErrorCode::kTooManyConnections:
      // Transient: the server may come back (restart, space freed).
      link.Drop(e->message);
      return Step::kRetry;
    default:
      link.Drop(e->message);
      return Step::kFatal;
  }
}

int ExitCodeFor(Step s) {
  switch (s) {
    case Step::kDone: return kExitOk;
    case Step::kCancelled: return kExitOk;
    case Step::kUnavailable: return kExitUnavailable;
    case Step::kRejected: return kExitDataErr;
    case Step::kRetry:
    case Step::kFatal: return kExitProtocol;
  }
  return kExitSoftware;
}

class Agency {
 public:
  Agency(const AgencyConfig& config, HostPort endpoint, SignalFd signals)
      : config_(config),
        signals_(std::move(signals)),
        link_(config, std::move(endpoint), signals_),
        window_(static_cast<std::size_t>(config.batch_window)) {}

  int RunLottery();
  int RunEcho();
  int RunBet(const std::map<std::string, std::string>& env);

 private:
  // Pipelined batches (batch.window). Submit() sends the batch just built in
  // window_ and, while the window is full, waits for the oldest ack.
  Step Submit(std::uint64_t seq, std::uint16_t count);
  // Waits for every batch in flight to be acked or refused.
  Step Drain();
  // Reconnects when needed (retiring what the server already holds) and
  // writes every batch not yet sent on this connection.
  Step SendPending();
  // Reads one reply: the oldest batch's ack or refusal.
  Step AwaitOldest();
  // After the oldest batch was refused: reads the SEQUENCE_GAP replies of the
  // batches sent behind it, then renumbers them to close the gap.
  Step SkipRejected();

  Step SendFinished(std::uint64_t& stored);
  Step QueryWinners(std::vector<std::string>& winners);
  int Stop(Step s);

  const AgencyConfig& config_;
  SignalFd signals_;
  ServerLink link_;
  BatchWindow window_;
  LatencyHistogram ack_latency_;
  std::uint64_t next_seq_ = 1;       // sequence number of the next batch built
  std::uint64_t batches_acked_ = 0;
  std::uint64_t bets_rejected_ = 0;
};

Step Agency::Submit(std::uint64_t seq, std::uint16_t count) {
  window_.Push(seq, count);
  if (Step s = SendPending(); s != Step::kDone) return s;
  while (window_.full()) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step Agency::Drain() {
  while (!window_.empty()) {
    if (Step s = AwaitOldest(); s != Step::kDone) return s;
  }
  return Step::kDone;
}

Step Agency::SendPending() {
  while (true) {
    if (!link_.connected()) {
      if (Step s = link_.Ensure(true); s != Step::kDone) return s;
      window_.MarkAllUnsent();
    }
    // What the server said it held when this connection began was stored
    // earlier (before a reconnect, or by an earlier run of this agency).
    const std::uint64_t held = link_.welcome().last_seq;
    while (!window_.empty() && window_.oldest().seq <= held && !window_.oldest().sent) {
      link_.MarkAcked(window_.oldest().seq);
      ++batches_acked_;
      window_.PopOldest();
    }
    bool broke = false;
    for (std::size_t i = 0; i < window_.size() && !broke; ++i) {
      BatchWindow::Batch& b = window_.at(i);
      if (b.sent) continue;
      Step s = link_.Send(b.frame);
      if (s == Step::kRetry) broke = true;
      else if (s != Step::kDone) return s;
      b.sent = true;
      b.sent_at = BatchWindow::Clock::now();
    }
    if (!broke) return Step::kDone;
  }
}

Step Agency::AwaitOldest() {
  while (true) {
    if (Step s = SendPending(); s != Step::kDone) return s;
    if (window_.empty()) return Step::kDone;  // the server held them all
    Frame reply;
    Step s = link_.Receive(reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) continue;
    if (s != Step::kDone) return s;
    BatchWindow::Batch& b = window_.oldest();
    if (reply.type == static_cast<std::uint8_t>(MessageType::kAck)) {
      auto ack = DecodeAck(reply.payload);
      if (!ack || ack->seq != b.seq) {
        link_.Drop("ACK does not match the oldest batch in flight");
        return Step::kFatal;
      }
      ack_latency_.Record(BatchWindow::Clock::now() - b.sent_at);
      link_.MarkProgress();
      link_.MarkAcked(b.seq);
      Log(LogLevel::kDebug, "batch_acked", Outcome::kSuccess, "client_id: {} | seq: {} | count: {}",
          config_.id, b.seq, b.count);
      ++batches_acked_;
      window_.PopOldest();
      return Step::kDone;
    }
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "apuesta_enviada");
      if (e == Step::kRejected) return SkipRejected();
      if (e == Step::kRetry) {
        if (!link_.Sleep(Millis(200))) return Step::kCancelled;
        continue;
      }
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to BETS", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

Step Agency::SkipRejected() {
  const std::uint64_t freed = window_.oldest().seq;
  bets_rejected_ += window_.oldest().count;
  window_.PopOldest();
  // Each batch sent behind the refused one gets its own reply: SEQUENCE_GAP
  // (send it again, renumbered) or, from a server that validates first,
  // INVALID_BET (refused too). Anything else: reconnect and resynchronise.
  for (std::size_t i = 0; i < window_.size() && link_.connected(); ++i) {
    BatchWindow::Batch& b = window_.at(i);
    if (!b.sent) break;
    Frame reply;
    Step s = link_.Receive(reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) break;
    if (s != Step::kDone) return s;
    auto e = reply.type == static_cast<std::uint8_t>(MessageType::kError)
                 ? DecodeError(reply.payload)
                 : Result<ErrorReply>(std::unexpected(Error{"not an ERROR"}));
    if (e && e->code == ErrorCode::kSequenceGap) continue;
    if (e && e->code == ErrorCode::kInvalidBet) {
      Log(LogLevel::kWarning, "apuesta_enviada", Outcome::kFail, "client_id: {} | code: {} | error: {}",
          config_.id, ErrorCodeName(e->code), e->message);
      b.refused = true;
      bets_rejected_ += b.count;
      continue;
    }
    link_.Drop(fmt::format("unexpected {} for a batch sent behind a refused one",
                           MessageTypeName(reply.type)));
    break;
  }
  window_.RemoveRefused();
  // The refused batches' numbers are not used: the others move down.
  window_.Renumber(freed);
  next_seq_ = freed + window_.size();
  return Step::kDone;
}

int Agency::Stop(Step s) {
  if (s == Step::kCancelled) {
    Log(LogLevel::kInfo, "shutdown", Outcome::kSuccess, "client_id: {} | detail: signal received",
        config_.id);
    link_.Close("shutting down");
    Log(LogLevel::kInfo, "close", Outcome::kSuccess, "client_id: {} | resource: socket", config_.id);
  }
  return ExitCodeFor(s);
}

Step Agency::SendFinished(std::uint64_t& stored) {
  std::string frame;
  EncodeFinished(frame);
  while (true) {
    if (Step s = link_.Ensure(true); s != Step::kDone) return s;
    Frame reply;
    Step s = link_.Exchange(frame, reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) continue;
    if (s != Step::kDone) return s;
    if (reply.type == static_cast<std::uint8_t>(MessageType::kFinishedAck)) {
      auto n = DecodeFinishedAck(reply.payload);
      if (!n) {
        link_.Drop(n.error().message);
        return Step::kFatal;
      }
      stored = *n;
      link_.MarkFinished();
      link_.MarkProgress();
      return Step::kDone;
    }
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "finished");
      if (e == Step::kRetry) continue;
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to FINISHED", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

Step Agency::QueryWinners(std::vector<std::string>& winners) {
  std::string frame;
  EncodeWinnersQuery(frame);
  while (true) {
    if (Step s = link_.Ensure(true); s != Step::kDone) return s;
    if (!link_.welcome().finished) {
      // A restarted server that lost FINISHED: say it again first.
      std::uint64_t stored = 0;
      if (Step s = SendFinished(stored); s != Step::kDone) return s;
    }
    winners.clear();
    Frame reply;
    // The draw waits for every agency: no bound on this wait.
    Step s = link_.Exchange(frame, reply, std::nullopt);
    while (s == Step::kDone && reply.type == static_cast<std::uint8_t>(MessageType::kWinners)) {
      std::vector<std::string_view> docs;
      auto last = DecodeWinners(reply.payload, docs);
      if (!last) {
        link_.Drop(last.error().message);
        return Step::kFatal;
      }
      for (std::string_view d : docs) winners.emplace_back(d);
      if (*last) {
        link_.MarkProgress();
        return Step::kDone;
      }
      s = link_.ReadMore(reply);
    }
    if (s == Step::kRetry) {
      link_.MarkProgress();  // the server answered until now; give it the full timeout again
      continue;
    }
    if (s != Step::kDone) return s;
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "consulta_ganadores");
      if (e == Step::kRetry) {
        link_.MarkProgress();
        if (!link_.Sleep(Millis(200))) return Step::kCancelled;
        continue;
      }
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to WINNERS_QUERY", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

int Agency::RunLottery() {
  const std::string path = config_.DatasetPath();
  UniqueFd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!file) {
    Log(LogLevel::kError, "dataset", Outcome::kFail, "client_id: {} | file: {} | error: {}",
        config_.id, path, std::strerror(errno));
    return kExitNoInput;
  }
  if (Step s = link_.Ensure(true); s != Step::kDone) return Stop(s);

  CsvReader reader(file.get());
  const Date today = Today();
  std::uint64_t lines_skipped = 0;
  std::optional<BetBatchEncoder> batch;

  // Hands the batch being built to the window (which may wait for acks).
  auto flush = [&]() -> Step {
    if (!batch || batch->count() == 0) return Step::kDone;
    const std::uint16_t count = batch->count();
    const std::uint64_t seq = batch->seq();
    batch.reset();
    ++next_seq_;
    return Submit(seq, count);
  };

  for (std::uint64_t records = 0;; ++records) {
    // Sending notices signals; this covers long runs of skipped lines.
    if (records % 4096 == 4095 && signals_.Pending()) return Stop(Step::kCancelled);
    auto next = reader.Next();
    if (!next) {
      Log(LogLevel::kError, "dataset", Outcome::kFail, "client_id: {} | file: {} | error: {}",
          config_.id, path, next.error().message);
      return kExitNoInput;
    }
    if (!next->has_value()) break;
    const CsvRecord& record = ***next;
    std::optional<std::string> reason = record.error;
    BetView bet;
    if (!reason) {
      auto parsed = DatasetRecordToBet(record, config_.id);
      if (!parsed) {
        reason = parsed.error().message;
      } else {
        bet = *parsed;
        reason = ValidateBet(bet, today);
      }
    }
    if (reason) {
      ++lines_skipped;
      Log(LogLevel::kWarning, "dataset_line", Outcome::kFail, "client_id: {} | line: {} | error: {}",
          config_.id, record.line, *reason);
      continue;
    }
    if (batch && (batch->count() >= config_.batch_max_amount || !batch->Fits(bet))) {
      if (Step s = flush(); s != Step::kDone) return Stop(s);
    }
    if (!batch) batch.emplace(window_.NextFrame(), next_seq_);
    batch->Add(bet);
  }
  if (Step s = flush(); s != Step::kDone) return Stop(s);
  if (Step s = Drain(); s != Step::kDone) return Stop(s);
  file.Reset();
  Log(LogLevel::kInfo, "dataset", Outcome::kSuccess,
      "client_id: {} | file: {} | batches: {} | lineas_omitidas: {} | apuestas_rechazadas: {}",
      config_.id, path, batches_acked_, lines_skipped, bets_rejected_);
  Log(LogLevel::kInfo, "batches_summary", Outcome::kSuccess,
      "client_id: {} | batches: {} | window: {} | ack_p50_us: {} | ack_p99_us: {}", config_.id,
      ack_latency_.count(), window_.capacity(), ack_latency_.PercentileMicros(0.5),
      ack_latency_.PercentileMicros(0.99));

  std::uint64_t stored = 0;
  if (Step s = SendFinished(stored); s != Step::kDone) return Stop(s);
  Log(LogLevel::kInfo, "apuestas_enviadas", Outcome::kSuccess, "client_id: {} | cantidad: {}",
      config_.id, stored);

  std::vector<std::string> winners;
  if (Step s = QueryWinners(winners); s != Step::kDone) return Stop(s);
  std::string out;
  for (const std::string& doc : winners) {
    out += doc;
    out += '\n';
  }
  std::size_t done = 0;
  while (done < out.size()) {
    ssize_t n = ::write(STDOUT_FILENO, out.data() + done, out.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  Log(LogLevel::kInfo, "consulta_ganadores", Outcome::kSuccess, "cant_ganadores: {}",
      winners.size());
  Log(LogLevel::kInfo, "resource_usage", Outcome::kSuccess, "client_id: {} | peak_rss_kib: {}",
      config_.id, PeakRssKib().value_or(0));
  link_.Close("round complete");
  if (bets_rejected_ > 0) {
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail,
        "client_id: {} | error: the server rejected {} bets", config_.id, bets_rejected_);
    return kExitDataErr;
  }
  return kExitOk;
}

int Agency::RunEcho() {
  for (int k = 1; k <= config_.loop_amount; ++k) {
    std::string msg = fmt::format("[CLIENT {}] Message N°{}", config_.id, k);
    std::string frame;
    EncodeEcho(frame, msg);
    while (true) {
      if (Step s = link_.Ensure(false); s != Step::kDone) return Stop(s);
      Frame reply;
      Step s = link_.Exchange(frame, reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
      if (s == Step::kRetry) continue;
      if (s != Step::kDone) return Stop(s);
      if (reply.type != static_cast<std::uint8_t>(MessageType::kEchoReply) || reply.payload != msg) {
        Log(LogLevel::kError, "receive_message", Outcome::kFail,
            "client_id: {} | error: the reply does not echo the message", config_.id);
        return kExitProtocol;
      }
      link_.MarkProgress();
      Log(LogLevel::kInfo, "receive_message", Outcome::kSuccess, "client_id: {} | msg: {}",
          config_.id, reply.payload);
      break;
    }
    if (k < config_.loop_amount &&
        !link_.Sleep(std::chrono::duration_cast<Millis>(config_.loop_period))) {
      return Stop(Step::kCancelled);
    }
  }
  Log(LogLevel::kInfo, "loop_finished", Outcome::kSuccess, "client_id: {}", config_.id);
  link_.Close("loop finished");
  return kExitOk;
}

int Agency::RunBet(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  const std::string first = get("NOMBRE"), last = get("APELLIDO"), document = get("DOCUMENTO"),
                    birthdate = get("NACIMIENTO"), number_text = get("NUMERO");
  for (const char* name : {"NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"}) {
    if (get(name).empty()) {
      Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail,
          "client_id: {} | error: environment variable {} is not set", config_.id, name);
      return kExitDataErr;
    }
  }
  // Reuse the dataset's own parsing rules for the number.
  CsvRecord fields;
  fields.fields = {first, last, document, birthdate, number_text};
  auto bet = DatasetRecordToBet(fields, config_.id);
  std::optional<std::string> reason = bet ? ValidateBet(*bet, Today()) : bet.error().message;
  if (reason) {
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail, "client_id: {} | error: {}", config_.id,
        *reason);
    return kExitDataErr;
  }
  if (Step s = link_.Ensure(true); s != Step::kDone) return Stop(s);
  // One batch through the same window as a dataset's batches.
  next_seq_ = link_.welcome().last_seq + 1;
  BetBatchEncoder encoder(window_.NextFrame(), next_seq_);
  encoder.Add(*bet);
  if (Step s = Submit(next_seq_++, 1); s != Step::kDone) return Stop(s);
  if (Step s = Drain(); s != Step::kDone) return Stop(s);
  if (bets_rejected_ > 0) return Stop(Step::kRejected);
  Log(LogLevel::kInfo, "apuesta_enviada", Outcome::kSuccess, "dni: {} | numero: {}", bet->document,
      bet->number);
  link_.Close("bet sent");
  return kExitOk;
}

}  // namespace

int RunAgency(const AgencyConfig& config, const std::map<std::string, std::string>& env) {
  SetLogLevel(config.log_level);
  ::signal(SIGPIPE, SIG_IGN);
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "client_id: {} | server_address: {} | loop_amount: {} | loop_period: {} | log_level: {} | "
      "batch_max_amount: {} | batch_window: {} | mode: {} | dataset: {}",
      config.id, config.server_address, config.loop_amount, FormatDuration(config.loop_period),
      LogLevelName(config.log_level), config.batch_max_amount, config.batch_window,
      AgencyModeName(config.mode),
      config.DatasetPath());
  auto endpoint = ParseHostPort(config.server_address);
  if (!endpoint) {
    Log(LogLevel::kError, "config", Outcome::kFail, "error: server.address {}",
        endpoint.error().message);
    return kExitConfig;
  }
  auto signals = SignalFd::Create({SIGTERM, SIGINT});
  if (!signals) {
    Log(LogLevel::kError, "startup", Outcome::kFail, "error: {}", signals.error().message);
    return kExitOsErr;
  }
  Agency agency(config, std::move(*endpoint), std::move(*signals));
  switch (config.mode) {
    case AgencyMode::kEcho: return agency.RunEcho();
    case AgencyMode::kBet: return agency.RunBet(env);
    case AgencyMode::kLottery: break;
  }
  return agency.RunLottery();
}

}  // namespace lottery
