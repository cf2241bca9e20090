#include "worker.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <string>

#include "bet.h"
#include "bet_store.h"
#include "crash_point.h"
#include "csv.h"
#include "draw_barrier.h"
#include "frame_io.h"
#include "log.h"
#include "net.h"
#include "protocol.h"
#include "signals.h"

namespace lottery {
namespace {

std::int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

class Worker {
 public:
  Worker(UniqueFd connection, const ServerConfig& config, SharedSegment& shared, int winners_fd,
         SignalFd signals, BetStore store)
      : conn_(std::move(connection)),
        shared_(shared),
        signals_(std::move(signals)),
        store_(std::move(store)),
        barrier_(shared_, store_, winners_fd, config.winning_number),
        reader_(conn_.get(), signals_.fd()),
        peer_(PeerAddress(conn_.get())),
        stall_(std::chrono::duration_cast<Millis>(config.read_timeout)),
        hello_(std::chrono::duration_cast<Millis>(config.hello_timeout)) {}

  ~Worker() { ReleaseSlot(); }

  int Serve();

 private:
  // Each handler returns false when the connection must end.
  bool HandleHello(std::string_view payload);
  bool HandleBets(std::string_view payload);
  bool HandleFinished();
  bool HandleWinnersQuery();
  bool HandleEcho(std::string_view payload);

  // Sends a reply after the acks waiting in acks_ (FlushAcks).
  bool Send(const std::string& bytes);
  bool WriteRaw(std::string_view bytes);
  // Queues the ack of a stored batch whose rows end at `durable_end`.
  void QueueAck(std::uint64_t seq, std::uint16_t count, std::uint64_t durable_end);
  // Acks a batch stored before (by an earlier connection or a dead worker)
  // once everything written so far is durable.
  bool AckRepeatedBatch(std::uint64_t seq, std::uint16_t count);
  // Makes every queued batch durable with one group commit, then sends their
  // acks in one write. On a failed sync no ack goes out: the agency gets
  // STORAGE_FAILED and the connection closes (returns false).
  bool FlushAcks();
  // Sends an error reply; returns whether the connection stays open.
  bool SendError(ErrorCode code, std::string message, std::uint32_t bet_index = kNoBetIndex);
  void ReleaseSlot();
  bool ShutdownRequested();
  // Picks up settings a reload changed (log level, read timeout).
  void RefreshSettings();

  UniqueFd conn_;
  SharedSegment& shared_;
  SignalFd signals_;
  BetStore store_;
  DrawBarrier barrier_;
  FrameReader reader_;
  std::string peer_;
  Millis stall_;
  Millis hello_;               // bound on the wait for the first frame
  bool first_frame_ = true;    // nothing received yet
  std::uint32_t settings_seen_ = 0;  // SharedState::settings_generation last applied
  std::uint32_t agency_ = 0;  // 0 until HELLO
  bool finished_ = false;
  bool stopping_ = false;
  std::string out_;   // reply frame buffer, reused
  std::string rows_;  // CSV rows of the batch being stored, reused
  // Acks of stored batches not sent yet: while the agency has more batches
  // already buffered, they are stored first, so that one fdatasync and one
  // write cover them all.
  std::string acks_;
  std::uint32_t acks_queued_ = 0;
  std::uint64_t ack_durable_end_ = 0;  // file offset the queued acks need on disk
  std::uint64_t frames_served_ = 0;
};

// Most batches stored ahead of one group commit and one ack write.
constexpr std::uint32_t kMaxQueuedAcks = 64;

bool Worker::ShutdownRequested() {
  if (!stopping_ && signals_.TakePending()) stopping_ = true;
  return stopping_;
}

bool Worker::Send(const std::string& bytes) {
  if (!FlushAcks()) return false;
  return WriteRaw(bytes);
}

void Worker::QueueAck(std::uint64_t seq, std::uint16_t count, std::uint64_t durable_end) {
  EncodeAck(acks_, Ack{seq, count});
  ++acks_queued_;
  ack_durable_end_ = std::max(ack_durable_end_, durable_end);
}

bool Worker::AckRepeatedBatch(std::uint64_t seq, std::uint16_t count) {
  Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess,
      "cantidad: {} | agency: {} | seq: {} | detail: repeated batch, already stored", count,
      agency_, seq);
  QueueAck(seq, count, shared_.state().sync.written_end.load(std::memory_order_acquire));
  return true;
}

bool Worker::FlushAcks() {
  if (acks_queued_ == 0) return true;
  const std::uint32_t batches = acks_queued_;
  acks_queued_ = 0;
  Status durable = store_.MakeDurable(shared_, ack_durable_end_);
  ack_durable_end_ = 0;
  if (!durable) {
    acks_.clear();
    Log(LogLevel::kError, "apuesta_recibida", Outcome::kFail,
        "agency: {} | batches: {} | error: not durable, not acknowledged: {}", agency_, batches,
        durable.error().message);
    out_.clear();
    EncodeError(out_, ErrorReply{ErrorCode::kStorageFailed, kNoBetIndex,
                                 fmt::format("{} batches not durable: {}", batches,
                                             durable.error().message)});
    WriteRaw(out_);
    return false;
  }
  CRASH_POINT("before_ack");
  bool sent = WriteRaw(acks_);
  acks_.clear();
  return sent;
}

bool Worker::WriteRaw(std::string_view bytes) {
  // Replies go out even while stopping, so the cancel descriptor is not used.
  IoStatus s = WriteAll(conn_.get(), bytes, -1, stall_);
  if (s != IoStatus::kOk) {
    Log(LogLevel::kWarning, "send_reply", Outcome::kFail, "ip: {} | agency: {} | error: {}", peer_,
        agency_, IoStatusName(s));
    return false;
  }
  return true;
}

bool Worker::SendError(ErrorCode code, std::string message, std::uint32_t bet_index) {
  Log(LogLevel::kWarning, "protocol_error", Outcome::kFail, "ip: {} | agency: {} | code: {} | error: {}",
      peer_, agency_, ErrorCodeName(code), message);
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
}

void Worker::ReleaseSlot() {
  if (agency_ == 0) return;
  SharedState& s = shared_.state();
  SharedLock lock(s);
  if (s.slots[agency_].owner_pid == ::getpid()) s.slots[agency_].owner_pid = 0;
}

int Worker::Serve() {
  while (true) {
    RefreshSettings();
    Frame frame;
    // A peer that connects and says nothing must not hold a connection
    // slot; after its first frame, waiting is legitimate (the draw).
    IoStatus s = reader_.Read(frame, first_frame_ ? std::optional<Millis>(hello_) : std::nullopt,
                              stall_);
    switch (s) {
      case IoStatus::kOk:
        break;
      case IoStatus::kClosed:
        Log(LogLevel::kInfo, "connection_closed", Outcome::kSuccess, "ip: {} | agency: {}", peer_,
            agency_);
        return 0;
      case IoStatus::kTruncated:
        Log(LogLevel::kWarning, "connection_closed", Outcome::kFail,
            "ip: {} | agency: {} | error: peer closed in the middle of a frame", peer_, agency_);
        return 0;
      case IoStatus::kTooLarge:
        if (!IsKnownMessageType(reader_.header().type)) {
          // Garbage, most likely: say what is wrong with its first byte.
          SendError(ErrorCode::kUnknownType,
                    fmt::format("unknown message type 0x{:02x}", reader_.header().type));
          return 0;
        }
        SendError(ErrorCode::kFrameTooLarge,
                  fmt::format("frame of {} bytes exceeds the limit of {}",
                              std::uint64_t{reader_.header().length} + kFrameHeaderSize,
                              kMaxFrameSize));
        return 0;
      case IoStatus::kTimeout:
        if (first_frame_ && reader_.buffered() == 0) {
          SendError(ErrorCode::kTimeout,
                    fmt::format("no message within {} of connecting (server.hello_timeout)",
                                FormatDuration(Seconds(hello_))));
          return 0;
        }
        SendError(ErrorCode::kTimeout, fmt::format("frame stalled for more than {}",
                                                   FormatDuration(Seconds(stall_))));
        return 0;
      case IoStatus::kCancelled:
        ShutdownRequested();
        SendError(ErrorCode::kShuttingDown, "server is shutting down");
        return 0;
      case IoStatus::kError:
        Log(LogLevel::kWarning, "connection_closed", Outcome::kFail, "ip: {} | agency: {} | error: {}",
            peer_, agency_, reader_.error());
        return 0;
    }
    first_frame_ = false;
    // A reload may have come while this worker waited for the frame.
    RefreshSettings();
    bool keep = true;
    switch (static_cast<MessageType>(frame.type)) {
      case MessageType::kHello: keep = HandleHello(frame.payload); break;
      case MessageType::kBets: keep = HandleBets(frame.payload); break;
      case MessageType::kFinished: keep = HandleFinished(); break;
      case MessageType::kWinnersQuery: keep = HandleWinnersQuery(); break;
      case MessageType::kEcho: keep = HandleEcho(frame.payload); break;
      default:
        if (IsKnownMessageType(frame.type)) {
          keep = SendError(ErrorCode::kOutOfOrder,
                           fmt::format("{} is sent by the server, not to it",
                                       MessageTypeName(frame.type)));
        } else {
          keep = SendError(ErrorCode::kUnknownType,
                           fmt::format("unknown message type 0x{:02x}", frame.type));
        }
    }
    // A peer that never pauses never makes the reader wait on the signal
    // descriptor: look at it now and then.
    if (++frames_served_ % 32 == 0 && signals_.Pending()) {
      ShutdownRequested();
      if (keep) SendError(ErrorCode::kShuttingDown, "server is shutting down");
      return 0;
    }
    if (!keep || stopping_) {
      FlushAcks();
      return 0;
    }
    if (acks_queued_ > 0 && (acks_queued_ >= kMaxQueuedAcks || !reader_.HasWholeFrame())) {
      if (!FlushAcks()) return 0;
    }
  }
}

bool Worker::HandleHello(std::string_view payload) {
  auto id = DecodeHello(payload);
  if (!id) return SendError(ErrorCode::kMalformed, id.error().message);
  if (agency_ != 0) return SendError(ErrorCode::kOutOfOrder, "HELLO was already sent");
  if (*id < 1 || *id > shared_.agencies()) {
    return SendError(ErrorCode::kBadAgency,
                     fmt::format("agency {} is outside 1..{}", *id, shared_.agencies()));
  }
  // A previous worker of this agency may have died mid-append: settle that
  // first, so WELCOME reports what is really stored.
  if (Status recovered = store_.Recover(shared_); !recovered) {
    return SendError(ErrorCode::kStorageFailed, recovered.error().message);
  }
  // last_seq counts as acknowledged for the agency: it must be on disk,
  // also when the sync that was to cover it failed.
  if (Status durable = store_.MakeAllDurable(shared_); !durable) {
    return SendError(ErrorCode::kStorageFailed,
                     fmt::format("stored batches not durable: {}", durable.error().message));
  }
  Welcome welcome;
  pid_t holder = 0;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    AgencySlot& slot = s.slots[*id];
    // A holder that died but is not reaped yet must not lock the agency out.
    if (slot.owner_pid != 0 && ::kill(slot.owner_pid, 0) != 0 && errno == ESRCH) slot.owner_pid = 0;
    if (slot.owner_pid != 0) {
      holder = slot.owner_pid;
    } else {
      slot.owner_pid = ::getpid();
      welcome.last_seq = slot.last_seq;
      welcome.finished = slot.finished;
    }
  }
  if (holder != 0) {
    return SendError(ErrorCode::kAgencyBusy,
                     fmt::format("agency {} is already connected (worker {})", *id, holder));
  }
  agency_ = *id;
  finished_ = welcome.finished;
  Log(LogLevel::kInfo, "agency_connected", Outcome::kSuccess,
      "agency: {} | ip: {} | last_seq: {} | finished: {}", agency_, peer_, welcome.last_seq,
      welcome.finished);
  out_.clear();
  EncodeWelcome(out_, welcome);
  return Send(out_);
}

bool Worker::HandleBets(std::string_view payload) {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "BETS before HELLO");
  if (finished_) return SendError(ErrorCode::kOutOfOrder, "BETS after FINISHED");
  BetBatchDecoder decoder(payload);
  if (Status st = decoder.Start(); !st) return SendError(ErrorCode::kMalformed, st.error().message);
  const std::uint64_t seq = decoder.seq();
  const std::uint16_t count = decoder.count();
  std::uint64_t last_seq = 0;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    last_seq = s.slots[agency_].last_seq;
  }
  if (seq <= last_seq) {
    // A batch re-sent after a reconnect: it is stored already, but its
    // first ack may never have gone out because its sync failed.
    return AckRepeatedBatch(seq, count);
  }
  if (seq != last_seq + 1) {
    Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {} | seq: {}",
        count, agency_, seq);
    return SendError(ErrorCode::kSequenceGap,
                     fmt::format("batch {} after {}: expected {}", seq, last_seq, last_seq + 1));
  }
  const Date today = Today();
  rows_.clear();
  BetView bet;
  for (std::uint32_t index = 0;; ++index) {
    if (!decoder.NextInto(bet)) {
      if (!decoder.failed()) break;
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {}", count,
          agency_);
      return SendError(ErrorCode::kMalformed, decoder.Next().error().message);
    }
    bet.agency = agency_;
    if (auto reason = ValidateBet(bet, today)) {
      Log(LogLevel::kWarning, "apuesta_recibida", Outcome::kFail,
          "cantidad: {} | agency: {} | seq: {} | bet: {} | error: {}", count, agency_, seq, index,
          *reason);
      return SendError(ErrorCode::kInvalidBet,
                       fmt::format("bet {} (document '{}'): {}", index, bet.document, *reason),
                       index);
    }
    AppendBetRow(rows_, bet);
  }
  auto stored = store_.AppendUnsynced(rows_, shared_, agency_, seq, count);
  if (!stored) {
    Log(LogLevel::kError, "apuesta_recibida", Outcome::kFail, "cantidad: {} | agency: {} | error: {}",
        count, agency_, stored.error().message);
    return SendError(ErrorCode::kStorageFailed,
                     fmt::format("batch {} not stored: {}", seq, stored.error().message));
  }
  if (!*stored) {
    // A worker that died after writing this batch had stored it already.
    return AckRepeatedBatch(seq, count);
  }
  if (count == 1 || LogEnabled(LogLevel::kDebug)) {
    LogLevel level = count == 1 ? LogLevel::kInfo : LogLevel::kDebug;
    BetBatchDecoder again(payload);
    (void)again.Start();
    while (auto next = again.Next()) {
      if (!next->has_value()) break;
      Log(level, "apuesta_almacenada", Outcome::kSuccess, "dni: {} | numero: {}", (*next)->document,
          (*next)->number);
    }
  }
  Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {} | agency: {} | seq: {}",
      count, agency_, seq);
  QueueAck(seq, count, **stored);
  return true;
}

bool Worker::HandleFinished() {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "FINISHED before HELLO");
  std::uint64_t stored = 0;
  if (Status marked = barrier_.MarkFinished(agency_); !marked) {
    return SendError(ErrorCode::kStorageFailed, marked.error().message);
  }
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    stored = s.slots[agency_].bets_stored;
  }
  finished_ = true;
  Log(LogLevel::kInfo, "agency_finished", Outcome::kSuccess, "agency: {} | bets_stored: {}",
      agency_, stored);
  out_.clear();
  EncodeFinishedAck(out_, stored);
  if (!Send(out_)) return false;
  // The agency that completes the barrier runs the draw right away.
  if (auto ran = barrier_.DrawIfDue(); !ran) {
    Log(LogLevel::kError, "sorteo", Outcome::kFail, "error: {}", ran.error().message);
  }
  return true;
}

bool Worker::HandleWinnersQuery() {
  if (agency_ == 0) return SendError(ErrorCode::kOutOfOrder, "WINNERS_QUERY before HELLO");
  if (!finished_) return SendError(ErrorCode::kOutOfOrder, "WINNERS_QUERY before FINISHED");
  bool peer_gone = false;
  CRASH_POINT("waiting_for_draw");
  auto waited = barrier_.WaitForDraw([this, &peer_gone] {
    // An agency that hung up must not keep its slot until the draw.
    pollfd p{conn_.get(), POLLRDHUP, 0};
    peer_gone = ::poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR));
    return peer_gone || ShutdownRequested();
  });
  if (peer_gone) {
    Log(LogLevel::kInfo, "connection_closed", Outcome::kSuccess,
        "ip: {} | agency: {} | detail: agency left while waiting for the draw", peer_, agency_);
    return false;
  }
  if (waited == DrawBarrier::WaitResult::kCancelled) {
    SendError(ErrorCode::kDrawCancelled, "the server is shutting down before the draw");
    stopping_ = true;
    return false;
  }
  if (waited == DrawBarrier::WaitResult::kFailed) {
    SendError(ErrorCode::kStorageFailed, "the draw failed; see the server log");
    return false;
  }
  auto winners = barrier_.Winners(agency_);
  if (!winners) return SendError(ErrorCode::kStorageFailed, winners.error().message);
  std::vector<std::string_view> views(winners->begin(), winners->end());
  out_.clear();
  EncodeWinnersFrames(out_, views);
  if (!Send(out_)) return false;
  std::int64_t all_finished = 0;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    all_finished = s.all_finished_ns;
  }
  Log(LogLevel::kInfo, "winners_sent", Outcome::kSuccess,
      "agency: {} | cant_ganadores: {} | draw_latency_ms: {:.1f}", agency_, views.size(),
      all_finished > 0 ? static_cast<double>(MonotonicNanos() - all_finished) / 1e6 : 0.0);
  return true;
}

bool Worker::HandleEcho(std::string_view payload) {
  Log(LogLevel::kInfo, "receive_message", Outcome::kSuccess, "ip: {} | msg: {}", peer_, payload);
  out_.clear();
  EncodeEchoReply(out_, payload);
  return Send(out_);
}

}  // namespace

int RunWorker(UniqueFd connection, const ServerConfig& config, SharedSegment& shared,
              int winners_fd) {
  SetLogLevel(config.log_level);
  // Acks are small writes behind which the agency waits: Nagle's algorithm
  // would hold them for the peer's delayed ACK (tens of milliseconds).
  int one = 1;
  ::setsockopt(connection.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  auto signals = SignalFd::Create({SIGTERM, SIGINT});
  if (!signals) {
    Log(LogLevel::kError, "worker_start", Outcome::kFail, "error: {}", signals.error().message);
    return 1;
  }
  auto store = BetStore::Open(config.storage_path, config.storage_sync);
  if (!store) {
    Log(LogLevel::kError, "worker_start", Outcome::kFail, "error: {}", store.error().message);
    return 1;
  }
  Worker worker(std::move(connection), config, shared, winners_fd, std::move(*signals),
                std::move(*store));
  return worker.Serve();
}

}  // namespace lottery
