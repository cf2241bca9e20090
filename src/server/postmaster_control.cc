// The Postmaster's answers to lotteryctl (docs/PROTOCOL.md, "Control
// socket"): one function per command, each returning the reply.
#include <signal.h>

#include <filesystem>

#include <fmt/format.h>

#include "common/log.h"
#include "server/postmaster.h"
#include "server/round_status.h"
#include "storage/pg_store.h"
#include "storage/rounds.h"

namespace lottery {

void Postmaster::ArmBettingDeadline() {
  if (config_.draw_deadline <= Seconds(0)) return;
  betting_deadline_ =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(config_.draw_deadline);
  Log(LogLevel::kInfo, "draw_deadline", Outcome::kInProgress,
      "deadline: {} | detail: betting closes then, and the draw runs over the agencies that "
      "finished",
      FormatDuration(config_.draw_deadline));
}

ControlReply Postmaster::OnControl(const ControlRequest& request, const ControlPeer&) {
  if (!request.arg.empty()) {
    return ControlReply::Failure(fmt::format("{} takes no argument", LogSafe(request.command, 32)));
  }
  if (request.command == "status") return ControlStatus();
  if (request.command == "close") return ControlClose();
  if (request.command == "open") return ControlOpen();
  return ControlReply::Failure(fmt::format(
      "unknown command {}; the server knows status, close, open", LogSafe(request.command, 32)));
}

ControlReply Postmaster::ControlStatus() {
  const RoundReport r = ReadRoundReport(shared_.state());
  std::error_code ec;
  std::filesystem::path storage = std::filesystem::absolute(config_.storage_path, ec);
  ControlReply reply = ControlReply::Success();
  reply.Set("round", r.round)
      .Set("state", RoundStateName(r.state))
      .Set("agencies", r.agencies)
      .Set("connected", r.connected)
      .Set("finished", r.finished)
      .Set("bets", r.bets)
      .Set("storage_path", ec ? config_.storage_path : storage.lexically_normal().string());
  const bool drawn = r.state == RoundState::kDrawn;
  const std::uint64_t winners = drawn ? ReadRoundSummary(shared_.state()).winners : 0;
  const std::int64_t drawn_at =
      drawn ? shared_.state().drawn_at.load(std::memory_order_relaxed) : 0;
  reply.Set("current_round_drawn_at", drawn_at).Set("current_round_winners", winners);
  // Where lotteryctl rounds/show/verify read: the archive beside
  // storage_path, or the database (its DSN without the password, which
  // lotteryctl takes from libpq's own sources or its own --storage-dsn).
  reply.Set("storage_backend", StorageBackendName(config_.storage_backend));
  if (config_.storage_backend == StorageBackend::kPostgresql) {
    reply.Set("storage_dsn", PgSession::WithoutPassword(config_.postgresql_dsn));
  }
  return reply;
}

ControlReply Postmaster::ControlClose() {
  CloseBettingNow("operator (lotteryctl close)");
  const RoundReport r = ReadRoundReport(shared_.state());
  return ControlReply::Success().Set("round", r.round).Set("state", RoundStateName(r.state));
}

ControlReply Postmaster::ControlOpen() {
  const RoundReport r = ReadRoundReport(shared_.state());
  if (r.state != RoundState::kDrawn) {
    return ControlReply::Failure(
        fmt::format("round {} is {}, not drawn; the next round can be opened after the draw",
                    r.round, RoundStateName(r.state)));
  }
  auto opened = pg_ ? OpenNextPgRoundNow() : OpenNextRound(config_.storage_path, shared_);
  if (!opened) {
    Log(LogLevel::kError, "round_open", Outcome::kFail, "round: {} | error: {}", r.round,
        opened.error().message);
    return ControlReply::Failure(opened.error().message);
  }
  // The workers still alive hold the archived files open: they end as at a
  // shutdown, while this loop keeps accepting the next round's agencies.
  Log(LogLevel::kInfo, "round_open", Outcome::kSuccess, "round: {} | workers_stopped: {}", *opened,
      workers_.size());
  workers_.SignalAll(SIGTERM);
  ArmBettingDeadline();
  return ControlReply::Success().Set("round", *opened);
}

void Postmaster::CloseBettingNow(const char* reason) {
  betting_deadline_.reset();
  auto durable = pg_ ? ClosePgBettingNow() : CloseBettingDurably(config_.storage_path, shared_);
  if (!durable) {
    // Closed all the same; a restart before the draw would reopen betting.
    Log(LogLevel::kError, "betting_closed", Outcome::kFail, "reason: {} | error: not journaled: {}",
        reason, durable.error().message);
  }
  const BettingClosure closure = durable ? *durable : CloseBetting(shared_.state());
  if (!closure.was_open) {
    Log(LogLevel::kInfo, "betting_closed", Outcome::kSuccess, "reason: {} | detail: already closed",
        reason);
    return;
  }
  // Agencies that finished meet at the draw, which runs over them now.
  Log(closure.finished < closure.agencies ? LogLevel::kWarning : LogLevel::kInfo, "betting_closed",
      Outcome::kSuccess, "reason: {} | finished: {} | agencies: {}{}", reason, closure.finished,
      closure.agencies,
      closure.finished == 0 ? " | detail: no agency finished: there is nothing to draw" : "");
}

}  // namespace lottery

namespace lottery {
namespace {

// A request about the current round, answered by a committer; a refusal
// comes back as an error of `refused` kind.
Result<PgReply> AskCommitter(PgBackend& pg, SharedSegment& shared, PgRequestKind kind,
                             ErrorKind refused) {
  PgRequest request;
  request.kind = kind;
  request.round = shared.state().round.load(std::memory_order_acquire);
  auto reply = pg.link().Call(request);
  if (!reply) return reply;
  if (reply->status != kReplyOk) return Fail(refused, reply->message);
  return reply;
}

}  // namespace

Result<BettingClosure> Postmaster::ClosePgBettingNow() {
  auto reply = AskCommitter(*pg_, shared_, PgRequestKind::kClose, ErrorKind::kIo);
  if (!reply) return std::unexpected(reply.error());
  return CloseBetting(shared_.state());
}

Result<std::uint64_t> Postmaster::OpenNextPgRoundNow() {
  auto reply = AskCommitter(*pg_, shared_, PgRequestKind::kOpen, ErrorKind::kBusy);
  if (!reply) return std::unexpected(reply.error());
  BeginRound(shared_.state(), reply->round);
  return reply->round;
}

}  // namespace lottery
