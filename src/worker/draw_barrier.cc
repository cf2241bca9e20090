#include "worker/draw_barrier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/file_io.h"
#include "common/log.h"
#include "storage/file_lock.h"
#include "storage/rounds.h"
#include "storage/winner_index.h"
#include "wire/bet.h"
#include "worker/winners_file.h"

namespace lottery {
namespace {

// A waiting worker wakes this often to see whether its agency hung up (the
// futex cannot be polled together with the socket). Short slices cost every
// waiter a wake-up and a lock each time: at 1,000 agencies, 100 ms slices
// were 10,000 contended locks a second while the others were still betting.
constexpr std::chrono::milliseconds kWaitSlice{1000};

// Under the segment's lock.
bool DrawDue(const SharedState& s) {
  return s.draw_state == DrawState::kNotYet &&
         (s.finished_count >= s.agencies || (s.betting_closed && s.finished_count > 0));
}

}  // namespace

Result<bool> DrawBarrier::MarkFinished(std::uint32_t agency) {
  // Journaled before it counts: a restarted server still knows who finished.
  bool counted = false;
  bool due = false;
  std::uint64_t bets = 0;
  auto marked = store_.RecordFinished(shared_, agency, [&](SharedState& s) {
    counted = true;
    bets = s.slots[agency].bets_stored;
    s.slots[agency].finished = true;
    s.metrics.agencies[agency].finished.store(1, std::memory_order_relaxed);
    if (++s.finished_count == s.agencies) {
      s.all_finished_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                              std::chrono::steady_clock::now().time_since_epoch())
                              .count();
    }
    due = DrawDue(s);
  });
  if (!marked || !*marked) return marked;
  // Logged before the waiters are woken (and not under the segment's mutex,
  // which never covers I/O): this agency_finished comes before the sorteo it
  // allows.
  if (counted) {
    Log(LogLevel::kInfo, "agency_finished", Outcome::kSuccess, "agency: {} | bets_stored: {}",
        agency, bets);
  } else {
    Log(LogLevel::kInfo, "agency_finished", Outcome::kSuccess,
        "agency: {} | detail: it had already said FINISHED this round", agency);
  }
  // Waiters only care once the draw is due: waking all of them on every
  // FINISHED made the barrier quadratic in the number of agencies.
  if (due) {
    shared_.state().changed.fetch_add(1, std::memory_order_release);
    FutexWakeAll(shared_.state().changed);
  }
  return marked;
}

Result<bool> DrawBarrier::DrawIfDue() {
  SharedState& s = shared_.state();
  {
    SharedLock lock(s);
    if (!DrawDue(s) || s.shutting_down) return false;
    s.draw_state = DrawState::kRunning;
    s.metrics.draw_state.store(static_cast<std::uint32_t>(DrawState::kRunning),
                               std::memory_order_relaxed);
    s.drawer_pid = ::getpid();
  }
  Status drawn = RunDraw();
  CRASH_POINT("after_draw");
  SharedLock lock(s);
  s.draw_state = drawn ? DrawState::kDone : DrawState::kNotYet;
  s.metrics.draw_state.store(static_cast<std::uint32_t>(s.draw_state), std::memory_order_relaxed);
  s.drawer_pid = 0;
  lock.Broadcast();
  if (!drawn) return std::unexpected(drawn.error());
  return true;
}

Status DrawBarrier::RunDraw() {
  SharedState& s = shared_.state();
  const auto started = std::chrono::steady_clock::now();
  // "random": drawn now, once the bets are in, and logged on the sorteo line.
  const std::uint32_t winning_number =
      winning_number_ == kRandomWinningNumber ? DrawWinningNumber() : winning_number_;
  auto result = store_.Draw(shared_, winning_number);
  if (!result) return DrawFailed(result.error());
  if (Status published = PublishRoundResult(*result, shared_, winners_fd_); !published) {
    return DrawFailed(published.error());
  }
  const auto took = std::chrono::steady_clock::now() - started;
  s.metrics.draw_duration_ns.store(
      static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(took).count()),
      std::memory_order_relaxed);
  Log(LogLevel::kInfo, "sorteo", Outcome::kSuccess,
      "ronda: {} | apuestas: {} | ganadores: {} | numero_ganador: {} | duracion_ms: {:.1f} | "
      "sha256: {}",
      result->round, result->bets, result->winner_count(), result->winning_number,
      std::chrono::duration<double, std::milli>(took).count(), Sha256Hex(result->bets_sha256));
  return Ok();
}

Status DrawBarrier::DrawFailed(const Error& error) {
  Log(LogLevel::kError, "sorteo", Outcome::kFail, "error: {}", error.message);
  return std::unexpected(error);
}

DrawBarrier::WaitResult DrawBarrier::WaitForDraw(const std::function<bool()>& cancelled) {
  SharedState& s = shared_.state();
  while (true) {
    {
      SharedLock lock(s);
      if (s.draw_state == DrawState::kDone) return WaitResult::kDrawn;
      if (s.shutting_down) return WaitResult::kCancelled;
      if (!DrawDue(s)) {
        lock.Wait(kWaitSlice);
        if (s.draw_state == DrawState::kDone) return WaitResult::kDrawn;
      }
    }
    if (cancelled()) return WaitResult::kCancelled;
    // Due, or a drawer died and the parent reset the state: take over.
    auto ran = DrawIfDue();
    if (!ran) return WaitResult::kFailed;
  }
}

Result<std::vector<std::string>> DrawBarrier::Winners(std::uint32_t agency) const {
  WinnersExtent extent;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    if (s.draw_state != DrawState::kDone)
      return Fail(ErrorKind::kInternal, "the draw has not happened");
    extent = WinnersExtent{s.slots[agency].winners_offset, s.slots[agency].winners_bytes,
                           s.slots[agency].winners_count};
  }
  return ReadWinnerList(winners_fd_, extent);
}

Status PublishRoundResult(const RoundResult& result, SharedSegment& shared, int winners_fd) {
  SharedState& s = shared.state();
  std::string blob;
  const std::vector<WinnersExtent> extents = EncodeWinners(result.winners, blob);
  if (Status w = WriteWinnersFile(winners_fd, blob); !w) return w;
  SharedLock lock(s);
  for (std::uint32_t a = 1; a <= s.agencies && a < extents.size(); ++a) {
    s.slots[a].winners_offset = extents[a].offset;
    s.slots[a].winners_bytes = extents[a].bytes;
    s.slots[a].winners_count = extents[a].count;
  }
  s.draw_state = DrawState::kDone;
  s.drawn_at.store(result.drawn_at, std::memory_order_relaxed);
  s.metrics.draw_state.store(static_cast<std::uint32_t>(DrawState::kDone),
                             std::memory_order_relaxed);
  lock.Broadcast();
  return Ok();
}

}  // namespace lottery
