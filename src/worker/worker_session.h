// The worker's session: the state of one connection, from its first frame
// to its last, and the handlers of each message. Internal to worker/; its
// member functions are split by concern: worker_serve.cc (the frame loop),
// worker.cc (replies, HELLO, ECHO), worker_batches.cc (BETS and the acks'
// group commit), worker_draw.cc (FINISHED and WINNERS_QUERY).
//
// The session owns the connection, the stream over it (plain or TLS), its
// signal descriptor and its storage (BatchStorage);
// the shared segment and the winners descriptor must outlive it.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/net.h"
#include "common/signals.h"
#include "common/unique_fd.h"
#include "shm/shared_state.h"
#include "storage/bet_store.h"
#include "tls/agency_identity.h"
#include "wire/frame_io.h"
#include "wire/protocol.h"
#include "worker/draw_barrier.h"
#include "worker/worker.h"

namespace lottery {

// How much of an ECHO payload the log shows.
inline constexpr std::size_t kEchoLogBytes = 64;

class Worker {
 public:
  // `certificate` is the verified peer certificate's identity (std::nullopt
  // without TLS); `stream` runs over `connection`.
  Worker(UniqueFd connection, std::unique_ptr<ByteStream> stream,
         std::optional<CertificateIdentity> certificate, std::string peer,
         const WorkerOptions& options, SharedSegment& shared, int winners_fd, SignalFd signals,
         std::unique_ptr<BatchStorage> store)
      : conn_(std::move(connection)),
        stream_(std::move(stream)),
        certificate_(std::move(certificate)),
        shared_(shared),
        signals_(std::move(signals)),
        store_(std::move(store)),
        append_limits_(store_->Limits()),
        barrier_(shared_, *store_, winners_fd, options.winning_number),
        winning_number_(options.winning_number),
        reader_(*stream_, signals_.fd()),
        peer_(std::move(peer)),
        stall_(std::chrono::duration_cast<Millis>(options.read_timeout)),
        hello_(std::chrono::duration_cast<Millis>(options.hello_timeout)),
        hello_deadline_(options.hello_deadline),
        idle_(std::chrono::duration_cast<Millis>(options.idle_timeout)) {}

  ~Worker() {
    LogSingleBet();
    ReleaseSlot();
  }

  int Serve();

 private:
  // Each handler returns false when the connection must end.
  bool HandleHello(std::string_view payload);
  bool HandleBets(std::string_view payload);
  bool HandleFinished();
  bool HandleWinnersQuery();
  bool HandleEcho(std::string_view payload);
  // HandleBets' steps, inlined into it (worker_batches.cc): the per-batch
  // path stays one function for the compiler. Those returning
  // std::optional<bool> answer the batch (the handler's verdict) or let it
  // go on (nullopt).
  // A batch that is not the next one (a repeat, a gap) or comes after
  // betting closed is answered here.
  inline std::optional<bool> AnswerUntakenBatch(std::string_view payload, std::uint64_t seq,
                                                std::uint16_t count, Clock::time_point received);
  // A batch re-sent after a reconnect: acked again if it is the one stored.
  bool AnswerRepeatedBatch(std::string_view payload, std::uint64_t seq, std::uint16_t count,
                           Clock::time_point received);
  // Checks each row of the batch and appends it to pending_rows_ (its
  // winners to pending_winners_), adding up the rows' digest; `bet` is left
  // holding the last row. A bad row refuses the whole batch.
  inline std::optional<bool> PendRows(BetBatchDecoder& decoder, std::uint64_t seq,
                                      std::uint16_t count, const Date& today, std::uint64_t first,
                                      BetView& bet, std::uint64_t& digest);
  // Drops the batch's rows taken so far and refuses it; the pending batches
  // before it are still stored (and acked) before the error goes out.
  bool RefuseBatch(std::uint16_t count, std::size_t rows_mark, std::size_t winners_mark,
                   ErrorCode code, std::string message, std::uint32_t index);
  // Queues the checked batch to be stored with the pending ones.
  inline void PendBatch(std::uint64_t seq, std::uint16_t count, std::uint64_t first,
                        std::uint64_t digest, Clock::time_point received);
  // Bet mode's one bet, kept for LogSingleBet.
  inline void NoteSingleBet(std::uint16_t count, const BetView& bet);
  // DEBUG: stores the batch now and logs each of its bets as stored.
  bool LogStoredBets(std::string_view payload, const Date& today);

  // Sends a reply after the acks waiting in acks_ (FlushAcks).
  bool Send(const std::string& bytes);
  // Whether the connection has bytes the reader has not taken yet.
  bool InputWaiting() const;
  bool WriteRaw(std::string_view bytes);
  // Queues the ack of a stored batch whose rows end at `durable_end`; the
  // batch's frame was read whole at `received` (for the ack latency metric).
  void QueueAck(std::uint64_t seq, std::uint16_t count, std::uint64_t durable_end,
                Clock::time_point received);
  // Acks a batch stored before (by an earlier connection or a dead worker)
  // once everything written so far is durable.
  bool AckRepeatedBatch(std::uint64_t seq, std::uint16_t count, Clock::time_point received);
  // Counts a refused batch of `count` bets in the agency's metrics ...
  void CountRejectedBatch(std::uint16_t count);
  // ... and answers it with SendError.
  bool RejectBatch(std::uint16_t count, ErrorCode code, std::string message,
                   std::uint32_t bet_index = kNoBetIndex);
  // Stores the pending batches with one append and queues their acks. On a
  // storage failure they are refused with STORAGE_FAILED and the connection
  // closes (returns false).
  bool StorePendingBatches();
  // The append of `extents` failed with `error`: they are refused
  // (BETTING_CLOSED, SHUTTING_DOWN or STORAGE_FAILED).
  bool RefuseUnstored(const std::vector<BatchExtent>& extents, const Error& error);
  // Stores the pending batches, makes every queued batch durable with one
  // group commit, then sends their acks in one write. On a failed sync no ack goes out: the agency
  // gets STORAGE_FAILED and the connection closes (returns false).
  bool FlushAcks();
  // Sends an error reply; returns whether the connection stays open.
  bool SendError(ErrorCode code, std::string message, std::uint32_t bet_index = kNoBetIndex);
  void ReleaseSlot();
  // Bet mode's INFO line (`apuesta_almacenada | dni | numero`), once its
  // session ends having stored its one bet and said nothing more.
  void LogSingleBet();
  // Whether a signal asked this worker to stop: SIGTERM/SIGINT (shutdown),
  // or SIGUSR1 from a newer worker that proved the same agency (replaced_).
  bool ShutdownRequested();
  // Tells the peer why the worker stops (SHUTTING_DOWN or REPLACED).
  void SendStopReason();
  // BETTING_CLOSED: betting closed before this agency said FINISHED.
  bool SendBettingClosed();
  // HELLO found `holder` serving the agency: with TLS the new connection's
  // certificate proves the agency, so the older connection is closed
  // (SIGUSR1 to its worker) and the slot claimed once it is free. Returns
  // the claim (holder still set when the old worker did not let go in time).
  SlotClaim ReplaceHolder(std::uint32_t agency, pid_t holder);
  // Picks up settings a reload changed: the log level and the read, hello
  // and idle timeouts.
  void RefreshSettings();

  // Serve's jobs, one per step of a frame's life. Each returns false when
  // the connection must end.
  // How long to wait for the next frame: the idle timeout, or what is left
  // of the hello deadline before HELLO.
  Millis NextFrameWait() const;
  // A frame could not be read (`s` is not kOk): logs or answers why.
  void EndOnReadFailure(IoStatus s, Millis wait);
  void ReplyTooLarge();
  void ReplyTimeout(Millis wait);
  // Stores the batches before a frame that is not a batch, hands the frame
  // to its handler, then checks signals and flushes acks.
  bool ServeFrame(const Frame& frame);
  bool Dispatch(const Frame& frame);
  // Every kFramesPerSignalCheck frames: whether a signal ends the session.
  bool StopOnSignal(bool keep);
  // Flushes the queued acks once nothing more is about to join them.
  bool FlushAcksIfDue();

  UniqueFd conn_;
  std::unique_ptr<ByteStream> stream_;  // over conn_; destroyed first
  std::optional<CertificateIdentity> certificate_;
  SharedSegment& shared_;
  SignalFd signals_;
  std::unique_ptr<BatchStorage> store_;  // the bets file or PostgreSQL
  AppendLimits append_limits_;           // store_'s, read once
  DrawBarrier barrier_;
  std::uint32_t winning_number_;  // draw.winning_number (kRandomWinningNumber: none yet)
  FrameReader reader_;
  std::string peer_;
  Millis stall_;
  Millis hello_;  // bound on the wait for the first frame
  // Until HELLO succeeds, whatever the peer sends: one fixed deadline.
  std::chrono::steady_clock::time_point hello_deadline_;
  Millis idle_;                      // bound on the wait for each later frame
  bool first_frame_ = true;          // nothing received yet
  std::uint32_t settings_seen_ = 0;  // SharedState::settings_generation last applied
  std::uint32_t agency_ = 0;         // 0 until HELLO
  // The agency's last stored batch as this worker knows it: WELCOME's
  // last_seq, then its own appends. Only this worker appends for the agency
  // once it claimed it, and HELLO settled a dead worker's append before
  // WELCOME, so the shared slot is not newer (were it, BetStore::AppendBatches
  // would skip those batches).
  std::uint64_t stored_seq_ = 0;
  // The agency's stored bets as this worker knows them (WELCOME's
  // bets_stored, then its appends), and those validated but not stored yet:
  // a batch's rows take the positions after both (wire/row_digest.h).
  std::uint64_t stored_bets_ = 0;
  std::uint64_t pending_bets_ = 0;
  bool finished_ = false;
  // Bets in this session's batches (validated), and the first one when it
  // came alone in the session's first batch (LogSingleBet).
  std::uint64_t session_bets_ = 0;
  std::optional<std::string> single_bet_;
  std::uint64_t session_bets_stored_ = 0;  // of them, stored by this worker
  bool introduced_ = false;                // HELLO answered with WELCOME
  bool stopping_ = false;
  bool replaced_ = false;  // stopping because a newer connection took the agency
  std::string out_;        // reply frame buffer, reused
  // Batches validated but not stored yet: while the agency has more batches
  // already buffered, they are gathered and stored with one locked append
  // (BetStore::AppendBatches). Stored before anything else is sent or done.
  struct PendingBatch {
    std::uint64_t first = 0;  // the position of its first bet (BatchDigest::first)
    Clock::time_point received;
  };
  std::string pending_rows_;   // their rows, in the file's format
  std::string agency_column_;  // "<agency_>,", set at HELLO
  std::string row_scratch_;    // ParseBetRow's unquoted names
  std::vector<BatchExtent> pending_extents_;
  std::vector<PendingBatch> pending_batches_;   // one per extent
  std::vector<BatchDigest> stored_digests_;     // RecordBatchDigests' input, reused
  std::vector<IndexedWinner> pending_winners_;  // winner index entries (winner_index.h)
  // Acks of stored batches not sent yet: while the agency has more batches
  // already buffered, they are stored first, so that one fdatasync and one
  // write cover them all.
  std::string acks_;
  std::uint32_t acks_queued_ = 0;
  std::vector<Clock::time_point> acks_received_;  // when each queued ack's frame arrived
  std::uint64_t ack_durable_end_ = 0;             // file offset the queued acks need on disk
  std::uint64_t frames_served_ = 0;
  LogLimiter error_log_{20, std::chrono::seconds(1)};  // protocol_error lines
};

}  // namespace lottery
