// libFuzzer target: the bets file readers (the reference reader
// testing::ForEachStoredBet, and the
// draw's ScanWinners, which must agree with it exactly: a differential check
// that aborts on any difference) and start-up recovery (torn tail, batch
// journal), on a bets file made of the input. The first two bytes split the
// input into bets file and journal, and pick ScanWinners' read size.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "storage/batch_journal.h"
#include "storage/bet_store.h"
#include "storage/recovery.h"
#include "storage/store_test_util.h"
#include "storage/winner_scan.h"
#include "fuzz/fuzz_util.h"

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
  if (!testing::ForEachStoredBet(store.path(), 
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
    (void)recovery->RecoverRound(5);
  }
  (void)testing::ForEachStoredBet(path, [](const BetView&) {}, skipped);
  return 0;
}
