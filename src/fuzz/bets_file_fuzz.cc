// libFuzzer target: the bets file reader the draw uses (BetStore::ForEachBet)
// and start-up recovery (torn tail, batch journal), on a bets file made of
// the input. The first two bytes split the input into bets file and journal.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "batch_journal.h"
#include "bet_store.h"
#include "fuzz_util.h"

namespace {

std::string Directory() {
  static std::string dir = [] {
    std::string tmpl = (std::filesystem::temp_directory_path() / "lottery-fuzz-XXXXXX").string();
    return std::string(::mkdtemp(tmpl.data()));
  }();
  return dir;
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
  std::uint64_t skipped = 0;
  (void)store->ForEachBet([](const BetView&) {}, skipped);
  (void)store->CutTornTail();
  (void)store->RecoverRound(5);
  (void)store->ForEachBet([](const BetView&) {}, skipped);
  return 0;
}
