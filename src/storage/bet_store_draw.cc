// BetStore's draw (bet_store.h): the round's result from the bets file.
#include <fcntl.h>
#include <unistd.h>

#include <ctime>

#include "common/crash_point.h"
#include "common/log.h"
#include "storage/bet_store.h"
#include "storage/file_lock.h"
#include "storage/winner_index.h"

namespace lottery {
namespace {

// Marks which agencies took part (they finished before betting closed),
// counts their bets and drops the winners of the others. Returns how many
// took no part.
std::uint32_t ApplyTookPart(SharedState& s, RoundResult& result) {
  const std::uint32_t agencies = s.agencies;
  std::uint32_t excluded = 0;
  SharedLock lock(s);
  result.round = s.round.load(std::memory_order_relaxed);
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    // Agencies that had not finished when betting closed take no part:
    // their bets stay in the file, but win nothing.
    result.took_part[a] = s.slots[a].finished;
    if (result.took_part[a]) result.bets += s.slots[a].bets_stored;
    if (!result.took_part[a]) result.winners[a].clear();
    excluded += result.took_part[a] ? 0 : 1;
  }
  return excluded;
}

// The result of a draw over the first `size` bytes of the bets file behind
// `fd`: winners of the agencies that finished, and the bytes' SHA-256.
Result<RoundResult> FileDrawResult(int fd, std::uint64_t size, SharedState& s,
                                   std::uint32_t winning_number) {
  const std::uint32_t agencies = s.agencies;  // fixed at creation
  Result<WinnerScan> scan = CollectWinners(fd, s, agencies, winning_number);
  if (!scan) return std::unexpected(scan.error());
  RoundResult result;
  result.winning_number = winning_number;
  result.drawn_at = static_cast<std::int64_t>(::time(nullptr));
  result.bets_file_size = size;
  result.took_part.assign(agencies + 1, false);
  result.winners = std::move(scan->winners);
  if (std::uint32_t excluded = ApplyTookPart(s, result); excluded > 0) {
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "agencias_excluidas: {} | detail: betting closed before they finished; their bets take "
        "no part in the draw",
        excluded);
  }
  if (scan->skipped > 0 || scan->foreign > 0) {
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "skipped_lines: {} | unknown_agency_bets: {}", scan->skipped, scan->foreign);
  }
  auto sha = Sha256OfFile(fd, size);
  if (!sha) return std::unexpected(sha.error());
  result.bets_sha256 = *sha;
  return result;
}

}  // namespace

Status BetStore::Settle(SharedSegment& shared, std::uint32_t) {
  if (Status recovered = Recover(shared); !recovered) return recovered;
  return MakeAllDurable(shared);
}

Result<RoundResult> BetStore::Draw(SharedSegment& shared, std::uint32_t winning_number) {
  auto size = [this] {
    FileLock lock(fd_.get());
    return Size();
  }();
  if (!size) return std::unexpected(size.error());
  // A descriptor of its own: the store's is shared with the appending code.
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + path_);
  auto result = FileDrawResult(fd.get(), *size, shared.state(), winning_number);
  if (!result) return result;
  CRASH_POINT("draw_before_result");
  // Durable before any agency hears a winner (docs/STORAGE.md).
  if (Status w = WriteRoundResult(CurrentRoundFiles(path_).result, *result); !w) {
    return std::unexpected(w.error());
  }
  CRASH_POINT("draw_after_result");
  if (Status marked = MarkRoundComplete(); !marked) {
    // The result file is what says the round is drawn; the record only
    // repeats it, and recovery writes it when missing.
    Log(LogLevel::kWarning, "sorteo", Outcome::kInProgress,
        "detail: round not marked complete in the journal | error: {}", marked.error().message);
  }
  return result;
}

}  // namespace lottery
