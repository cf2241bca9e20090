#include "worker/draw_barrier.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "common/crash_point.h"
#include "common/file_io.h"
#include "common/log.h"
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
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    if (!s.slots[agency].finished && s.betting_closed) return false;
    if (!s.slots[agency].finished) {
      s.slots[agency].finished = true;
      s.metrics.agencies[agency].finished.store(1, std::memory_order_relaxed);
      if (++s.finished_count == s.agencies) {
        s.all_finished_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count();
      }
      // Waiters only care once the draw is due: waking all of them on every
      // FINISHED made the barrier quadratic in the number of agencies.
      if (DrawDue(s)) lock.Broadcast();
    }
  }
  return true;
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
  if (drawn) {
    // The next start begins a new round instead of resuming this one.
    if (Status marked = store_.MarkRoundComplete(); !marked) {
      Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
          "detail: round not marked complete in the journal | error: {}", marked.error().message);
    }
  }
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
  const std::uint32_t agencies = s.agencies;  // fixed at creation
  const auto started = std::chrono::steady_clock::now();
  // "random": drawn now, once the bets are in, and logged on the sorteo line.
  const std::uint32_t winning_number =
      winning_number_ == kRandomWinningNumber ? DrawWinningNumber() : winning_number_;
  // A descriptor of its own: the store's is shared with the appending code.
  UniqueFd fd(::open(store_.path().c_str(), O_RDONLY | O_CLOEXEC));
  Result<WinnerScan> scan =
      fd ? CollectWinners(fd.get(), s, agencies, winning_number) : FailErrno("open " + store_.path());
  if (!scan) {
    Log(LogLevel::kError, "sorteo", Outcome::kFail, "error: {}", scan.error().message);
    return std::unexpected(scan.error());
  }
  // Agencies that had not finished when betting closed take no part: their
  // bets stay in the file, but win nothing.
  std::vector<std::vector<std::string>>& winners = scan->winners;
  std::uint32_t excluded = 0;
  {
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= agencies; ++a) {
      if (!s.slots[a].finished) {
        ++excluded;
        winners[a].clear();
      }
    }
  }
  if (excluded > 0) {
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "agencias_excluidas: {} | detail: betting closed before they finished; their bets take "
        "no part in the draw",
        excluded);
  }
  if (scan->skipped > 0 || scan->foreign > 0) {
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "skipped_lines: {} | unknown_agency_bets: {}", scan->skipped, scan->foreign);
  }
  std::string blob;
  const std::vector<WinnersExtent> extents = EncodeWinners(winners, blob);
  std::uint64_t total_winners = 0;
  for (std::uint32_t a = 1; a <= agencies; ++a) total_winners += extents[a].count;
  if (Status w = WriteWinnersFile(winners_fd_, blob); !w) return w;
  {
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= agencies; ++a) {
      s.slots[a].winners_offset = extents[a].offset;
      s.slots[a].winners_bytes = extents[a].bytes;
      s.slots[a].winners_count = extents[a].count;
    }
  }
  s.metrics.draw_duration_ns.store(
      static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started)
                                     .count()),
      std::memory_order_relaxed);
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - started;
  Log(LogLevel::kInfo, "sorteo", Outcome::kSuccess,
      "apuestas: {} | ganadores: {} | numero_ganador: {} | duracion_ms: {:.1f}", scan->bets,
      total_winners, winning_number, took.count());
  return Ok();
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
    if (s.draw_state != DrawState::kDone) return Fail(ErrorKind::kInternal, "the draw has not happened");
    extent = WinnersExtent{s.slots[agency].winners_offset, s.slots[agency].winners_bytes,
                           s.slots[agency].winners_count};
  }
  return ReadWinnerList(winners_fd_, extent);
}

}  // namespace lottery
