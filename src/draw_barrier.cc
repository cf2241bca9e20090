#include "draw_barrier.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include "crash_point.h"
#include "file_io.h"
#include "log.h"
#include "winner_scan.h"

namespace lottery {
namespace {

constexpr std::chrono::milliseconds kWaitSlice{100};

}  // namespace

Result<UniqueFd> CreateWinnersFile() {
  int fd = ::memfd_create("lottery-winners", MFD_CLOEXEC);
  if (fd < 0) return FailErrno("memfd_create");
  return UniqueFd(fd);
}

Status DrawBarrier::MarkFinished(std::uint32_t agency) {
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    if (!s.slots[agency].finished) {
      s.slots[agency].finished = true;
      if (++s.finished_count == s.agencies) {
        s.all_finished_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                                std::chrono::steady_clock::now().time_since_epoch())
                                .count();
      }
      lock.Broadcast();
    }
  }
  return Ok();
}

Result<bool> DrawBarrier::DrawIfDue() {
  SharedState& s = shared_.state();
  {
    SharedLock lock(s);
    if (s.draw_state != DrawState::kNotYet || s.finished_count < s.agencies || s.shutting_down) {
      return false;
    }
    s.draw_state = DrawState::kRunning;
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
  s.drawer_pid = 0;
  lock.Broadcast();
  if (!drawn) return std::unexpected(drawn.error());
  return true;
}

Status DrawBarrier::RunDraw() {
  SharedState& s = shared_.state();
  const std::uint32_t agencies = s.agencies;  // fixed at creation
  const auto started = std::chrono::steady_clock::now();
  // A descriptor of its own: the store's is shared with the appending code.
  UniqueFd fd(::open(store_.path().c_str(), O_RDONLY | O_CLOEXEC));
  Result<WinnerScan> scan =
      fd ? ScanWinners(fd.get(), agencies, winning_number_) : FailErrno("open " + store_.path());
  if (!scan) {
    Log(LogLevel::kError, "sorteo", Outcome::kFail, "error: {}", scan.error().message);
    return std::unexpected(scan.error());
  }
  const std::vector<std::vector<std::string>>& winners = scan->winners;
  if (scan->skipped > 0 || scan->foreign > 0) {
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "skipped_lines: {} | unknown_agency_bets: {}", scan->skipped, scan->foreign);
  }
  // Layout: per agency, each document as a 2-byte length and its bytes.
  std::string blob;
  std::vector<AgencySlot> located(agencies + 1);
  std::uint64_t total_winners = 0;
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    located[a].winners_offset = blob.size();
    for (const std::string& doc : winners[a]) {
      blob.push_back(static_cast<char>(doc.size() >> 8));
      blob.push_back(static_cast<char>(doc.size() & 0xff));
      blob += doc;
    }
    located[a].winners_bytes = blob.size() - located[a].winners_offset;
    located[a].winners_count = static_cast<std::uint32_t>(winners[a].size());
    total_winners += winners[a].size();
  }
  if (::ftruncate(winners_fd_, static_cast<off_t>(blob.size())) != 0) {
    return FailErrno("ftruncate winners");
  }
  if (Status w = PwriteAll(winners_fd_, blob, 0, "write winners"); !w) return w;
  {
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= agencies; ++a) {
      s.slots[a].winners_offset = located[a].winners_offset;
      s.slots[a].winners_bytes = located[a].winners_bytes;
      s.slots[a].winners_count = located[a].winners_count;
    }
  }
  const std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - started;
  Log(LogLevel::kInfo, "sorteo", Outcome::kSuccess,
      "apuestas: {} | ganadores: {} | duracion_ms: {:.1f}", scan->bets, total_winners,
      took.count());
  return Ok();
}

DrawBarrier::WaitResult DrawBarrier::WaitForDraw(const std::function<bool()>& cancelled) {
  SharedState& s = shared_.state();
  while (true) {
    {
      SharedLock lock(s);
      if (s.draw_state == DrawState::kDone) return WaitResult::kDrawn;
      if (s.shutting_down) return WaitResult::kCancelled;
      bool due = s.draw_state == DrawState::kNotYet && s.finished_count >= s.agencies;
      if (!due) {
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
  AgencySlot slot;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    if (s.draw_state != DrawState::kDone) return Fail("the draw has not happened");
    slot = s.slots[agency];
  }
  std::string blob(slot.winners_bytes, '\0');
  std::size_t done = 0;
  while (done < blob.size()) {
    ssize_t n = ::pread(winners_fd_, blob.data() + done, blob.size() - done,
                        static_cast<off_t>(slot.winners_offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return FailErrno("read winners", n == 0 ? EIO : errno);
    done += static_cast<std::size_t>(n);
  }
  std::vector<std::string> documents;
  documents.reserve(slot.winners_count);
  std::size_t pos = 0;
  while (pos + 2 <= blob.size()) {
    std::size_t len = (static_cast<unsigned char>(blob[pos]) << 8) |
                      static_cast<unsigned char>(blob[pos + 1]);
    if (pos + 2 + len > blob.size()) return Fail("winners file is corrupt");
    documents.emplace_back(blob, pos + 2, len);
    pos += 2 + len;
  }
  return documents;
}

}  // namespace lottery
