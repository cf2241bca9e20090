// libFuzzer target: the bets file readers (the reference reader
// testing::ForEachStoredBet, and the
// draw's ScanWinners, which must agree with it exactly: a differential check
// that aborts on any difference) and start-up recovery (torn tail, batch
// journal), on a bets file made of the input. The first two bytes split the
// input into bets file and journal, and pick ScanWinners' read size. Then
// the winner index (storage/winner_index.h) is rebuilt over the recovered
// file and extended by appends: the draw's CollectWinners must agree with a
// scan of the whole file.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "common/file_io.h"
#include "fuzz/fuzz_util.h"
#include "storage/batch_journal.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"
#include "storage/recovery.h"
#include "storage/store_test_util.h"
#include "storage/winner_index.h"
#include "storage/winner_scan.h"

namespace {

std::string Directory() {
  static std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lottery-fuzz-XXXXXX").string();
    return std::string(::mkdtemp(tmpl.data()));
  }();
  return dir;
}

// ScanWinners against the reference reader + HasWon for one winning number.
void CrossCheck(const lottery::BetStore& store, std::uint32_t winning, std::size_t chunk) {
  using namespace lottery;
  constexpr std::uint32_t kAgencies = 5;
  std::vector<std::vector<std::string>> winners(kAgencies + 1);
  std::uint64_t bets = 0, skipped = 0, foreign = 0;
  if (!testing::ForEachStoredBet(
          store.path(),
          [&](const BetView& bet) {
            ++bets;
            if (bet.agency < 1 || bet.agency > kAgencies) {
              ++foreign;
              return;
            }
            if (HasWon(bet, winning)) winners[bet.agency].emplace_back(bet.document);
          },
          skipped)) {
    return;
  }
  auto scan = ScanWinners(store.fd(), kAgencies, winning, chunk);
  if (!scan || scan->bets != bets || scan->skipped != skipped || scan->foreign != foreign ||
      scan->winners != winners) {
    std::abort();
  }
}

// The winner index rebuilt over the recovered file, then a batch appended
// with its winners (as a worker does, `appends` times): the draw's
// CollectWinners must give what one scan of the whole file gives.
void CheckWinnerIndex(const std::string& path, int appends, std::size_t chunk) {
  using namespace lottery;
  constexpr std::uint32_t kAgencies = 5;
  constexpr std::uint32_t kWinning = 7574;
  // One segment for every input (creating one costs more than the rest):
  // IndexWinners rebuilds the index, and appends continue each agency's seq.
  static auto shared = SharedSegment::Create(kAgencies);
  if (!shared) return;
  auto store = BetStore::Open(path, SyncMode::kNever);
  if (!store) return;
  if (!RebuildWinnerIndex(store->fd(), shared->state(), kAgencies, kWinning, chunk)) return;
  for (int i = 0; i < appends; ++i) {
    const std::uint32_t agency = 1 + static_cast<std::uint32_t>(i) % kAgencies;
    std::string rows;
    std::vector<IndexedWinner> winners;
    for (std::uint32_t number : {kWinning, 12u, kWinning}) {
      BetView bet{agency, "Ana", "Diaz", i % 2 ? "0042" : "99", "1990-01-01", number};
      AppendBetRow(rows, bet);
      if (HasWon(bet, kWinning)) AddIndexedWinner(winners, agency, bet.document);
    }
    if (i == 1) {
      // Rows that reach the file without their entries, as a writer that
      // died mid-append leaves them: the index must stop where they start.
      auto end = store->Size();
      if (!end || !PwriteAll(store->fd(), rows, *end)) return;
      continue;
    }
    const std::uint64_t seq = shared->state().slots[agency].last_seq + 1;
    if (i == 3) {
      // Two batches in one append, as a worker stores what it has buffered:
      // the first holds the first two rows (one winner), the second the last.
      const std::size_t first_end = rows.find('\n', rows.find('\n') + 1) + 1;
      const BatchExtent extents[] = {{seq, 2, first_end, 1}, {seq + 1, 1, rows.size(), 2}};
      if (!store->AppendBatches(rows, *shared, agency, extents, winners)) return;
      continue;
    }
    auto stored = testing::AppendOneBatch(*store, rows, *shared, agency, seq, 3, winners);
    if (!stored) return;
  }
  auto full = ScanWinners(store->fd(), kAgencies, kWinning, chunk);
  auto indexed = CollectWinners(store->fd(), shared->state(), kAgencies, kWinning, chunk);
  if (!full || !indexed || full->bets != indexed->bets || full->skipped != indexed->skipped ||
      full->foreign != indexed->foreign || full->winners != indexed->winners) {
    std::abort();
  }
}

void WriteFile(const std::string& path, const std::uint8_t* data, std::size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return;
  if (size > 0) std::fwrite(data, 1, size, f);
  std::fclose(f);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  std::size_t split = size >= 2 ? (data[0] | (data[1] << 8)) % (size - 1) : 0;
  const std::uint8_t* rest = size >= 2 ? data + 2 : data;
  std::size_t rest_size = size >= 2 ? size - 2 : size;
  split = std::min(split, rest_size);
  const std::string path = Directory() + "/bets.csv";
  WriteFile(path, rest, split);
  WriteFile(path + ".journal", rest + split, rest_size - split);
  auto store = BetStore::Open(path, SyncMode::kNever);
  if (!store) return 0;
  const std::size_t chunk = size >= 1 ? data[0] % 97 + 1 : 1;
  CrossCheck(*store, 7574, chunk);
  CrossCheck(*store, size >= 2 ? data[1] % 10 : 0, chunk);
  std::uint64_t skipped = 0;
  if (auto recovery = StartupRecovery::Open(path, SyncMode::kNever)) {
    (void)recovery->CutTornTail();
    (void)recovery->RecoverCurrentRound(5);
    CheckWinnerIndex(path, size >= 1 ? data[0] % 4 : 0, chunk);
  }
  (void)testing::ForEachStoredBet(
      path, [](const BetView&) {}, skipped);
  return 0;
}
