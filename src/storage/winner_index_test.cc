#include "storage/winner_index.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"
#include "storage/store_test_util.h"
#include "wire/bet.h"

namespace lottery {
namespace {

constexpr std::uint32_t kWinning = 7574;
constexpr std::uint32_t kAgencies = 4;

// One batch of valid rows for `agency`, and its winners for the index.
struct Batch {
  std::string rows;
  std::vector<IndexedWinner> winners;
  std::uint64_t count = 0;
};

Batch MakeBatch(std::mt19937& rng, std::uint32_t agency, int bets, int winner_every) {
  Batch b;
  std::vector<std::string> docs;
  for (int i = 0; i < bets; ++i) {
    docs.push_back(std::to_string(rng() % 100000000));
  }
  for (int i = 0; i < bets; ++i) {
    BetView bet;
    bet.agency = agency;
    bet.first_name = "Ana";
    bet.last_name = "Diaz, \"la\" Lopez";  // quoted on disk: the scan's slow path
    bet.document = docs[i];
    bet.birthdate = "1990-02-28";
    bet.number = winner_every > 0 && rng() % winner_every == 0 ? kWinning : rng() % 7000;
    AppendBetRow(b.rows, bet);
    if (HasWon(bet, kWinning)) AddIndexedWinner(b.winners, agency, bet.document);
  }
  b.count = static_cast<std::uint64_t>(bets);
  return b;
}

void AppendRaw(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
  REQUIRE(out.good());
}

// The reference: one scan of the whole file.
WinnerScan FullScan(const std::string& path, std::uint32_t number) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  auto scan = ScanWinners(fd.get(), kAgencies, number);
  REQUIRE(scan);
  return *scan;
}

WinnerScan Collect(const std::string& path, SharedSegment& shared, std::uint32_t number) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  auto got = CollectWinners(fd.get(), shared.state(), kAgencies, number);
  REQUIRE(got);
  return *got;
}

void CheckSame(const WinnerScan& got, const WinnerScan& want) {
  CHECK(got.bets == want.bets);
  CHECK(got.skipped == want.skipped);
  CHECK(got.foreign == want.foreign);
  REQUIRE(got.winners.size() == want.winners.size());
  for (std::size_t a = 0; a < want.winners.size(); ++a) {
    CHECK_MESSAGE(got.winners[a] == want.winners[a], "agency ", a);
  }
}

std::uint64_t IndexedEnd(SharedSegment& shared) {
  const WinnerIndex& index = shared.state().winner_index;
  return index.reach[index.current & 1].indexed_end;
}

Status Rebuild(const std::string& path, SharedSegment& shared, std::uint32_t number) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open");
  auto scan = RebuildWinnerIndex(fd.get(), shared.state(), kAgencies, number);
  if (!scan) return std::unexpected(scan.error());
  return Ok();
}

TEST_CASE("the index gives the full scan's winners: rebuilt at start-up, then extended per batch") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::mt19937 rng(7);
  // What an earlier run left: rows of every kind, a foreign agency, a line
  // that does not parse, a BOM.
  std::string prefix = "\xEF\xBB\xBF";
  for (std::uint32_t a = 1; a <= kAgencies; ++a) prefix += MakeBatch(rng, a, 300, 20).rows;
  prefix += "9,Foreign,Agency,123,1990-01-01,7574\r\n";
  prefix += "not a row\r\n";
  prefix += "2,Lone,Cr,555,1991-01-01,7574\r";
  prefix += "3,Ana,Lopez,777,1980-05-05,7574\n";
  AppendRaw(path, prefix);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  REQUIRE(Rebuild(path, *shared, kWinning));
  REQUIRE(shared->state().winner_index.enabled);
  CHECK(IndexedEnd(*shared) == prefix.size());
  CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));

  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  std::uint64_t seq[kAgencies + 1] = {};
  for (int i = 0; i < 40; ++i) {
    const std::uint32_t agency = 1 + rng() % kAgencies;
    Batch b = MakeBatch(rng, agency, 1 + static_cast<int>(rng() % 200), 15);
    auto stored =
        testing::AppendOneBatch(*store, b.rows, *shared, agency, ++seq[agency], b.count, b.winners);
    REQUIRE(stored);
    REQUIRE(stored->has_value());
  }
  CHECK(IndexedEnd(*shared) == testing::ReadFile(path).size());
  const WinnerScan full = FullScan(path, kWinning);
  std::uint64_t winners = 0;
  for (const auto& w : full.winners) winners += w.size();
  CHECK(winners > 40);
  CheckSame(Collect(path, *shared, kWinning), full);
  // Another number than the index's: the draw scans, and still agrees.
  CheckSame(Collect(path, *shared, 12), FullScan(path, 12));
}

TEST_CASE("batches appended together index exactly the rows they wrote, a skipped prefix too") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::mt19937 rng(11);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  REQUIRE(Rebuild(path, *shared, kWinning));
  std::uint64_t seq = 0;
  for (int group = 0; group < 12; ++group) {
    std::string rows;
    std::vector<IndexedWinner> winners;
    std::vector<BatchExtent> extents;
    const int batches = 1 + static_cast<int>(rng() % 5);
    for (int i = 0; i < batches; ++i) {
      Batch b = MakeBatch(rng, 2, 1 + static_cast<int>(rng() % 60), 6);
      rows += b.rows;
      winners.insert(winners.end(), b.winners.begin(), b.winners.end());
      extents.push_back(BatchExtent{seq + 1 + static_cast<std::uint64_t>(i),
                                    static_cast<std::uint32_t>(b.count), rows.size(),
                                    winners.size()});
    }
    // Now and then a dead writer's repair has stored the first of them.
    std::size_t skip = 0;
    if (group % 3 == 2) {
      skip = 1 + rng() % static_cast<std::size_t>(batches);
      std::string done = rows.substr(0, extents[skip - 1].rows_end);
      std::vector<IndexedWinner> done_winners(
          winners.begin(),
          winners.begin() + static_cast<std::ptrdiff_t>(extents[skip - 1].winners_end));
      std::uint64_t count = 0;
      for (std::size_t i = 0; i < skip; ++i) count += extents[i].count;
      REQUIRE(testing::AppendOneBatch(*store, done, *shared, 2, extents[skip - 1].seq, count,
                                      done_winners));
    }
    auto outcome = store->AppendBatches(rows, *shared, 2, extents, winners);
    REQUIRE(outcome);
    CHECK(outcome->skipped == skip);
    seq = extents.back().seq;
  }
  CHECK(IndexedEnd(*shared) == testing::ReadFile(path).size());
  CHECK(shared->state().slots[2].last_seq == seq);
  const WinnerScan full = FullScan(path, kWinning);
  CHECK(full.winners[2].size() > 10);
  CheckSame(Collect(path, *shared, kWinning), full);
}

TEST_CASE("rows the index missed (a dead writer's batch) are scanned, before and after") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::mt19937 rng(11);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  REQUIRE(Rebuild(path, *shared, kWinning));  // an empty file
  Batch first = MakeBatch(rng, 1, 100, 5);
  REQUIRE(testing::AppendOneBatch(*store, first.rows, *shared, 1, 1, first.count, first.winners));
  const std::uint64_t reach = IndexedEnd(*shared);
  // Rows that reached the file without their index entries.
  AppendRaw(path, MakeBatch(rng, 2, 100, 5).rows);
  Batch later = MakeBatch(rng, 3, 100, 5);
  REQUIRE(testing::AppendOneBatch(*store, later.rows, *shared, 3, 1, later.count, later.winners));
  CHECK(IndexedEnd(*shared) == reach);  // the index stopped growing
  CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));
}

TEST_CASE("a writer killed while extending the index leaves the old reach in force") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::mt19937 rng(13);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  REQUIRE(Rebuild(path, *shared, kWinning));
  Batch first = MakeBatch(rng, 1, 50, 3);
  REQUIRE(testing::AppendOneBatch(*store, first.rows, *shared, 1, 1, first.count, first.winners));
  // The second batch's rows and entries are written, the switch is not.
  Batch second = MakeBatch(rng, 2, 50, 3);
  REQUIRE(!second.winners.empty());
  AppendRaw(path, second.rows);
  WinnerIndex& index = shared->state().winner_index;
  const WinnerIndexReach now = index.reach[index.current & 1];
  for (std::size_t i = 0; i < second.winners.size(); ++i)
    index.entries[now.count + i] = second.winners[i];
  index.reach[(index.current & 1) ^ 1] = WinnerIndexReach{now.indexed_end + 999, 1, now.count + 1};
  CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));
}

TEST_CASE(
    "no index: a random winning number, a file ending inside a quoted field, too many winners") {
  testing::TempDir dir;
  std::mt19937 rng(17);
  SUBCASE("random") {
    const std::string path = dir.File("random.csv");
    AppendRaw(path, MakeBatch(rng, 1, 100, 5).rows);
    auto shared = SharedSegment::Create(kAgencies);
    REQUIRE(shared);
    REQUIRE(Rebuild(path, *shared, kRandomWinningNumber));
    CHECK_FALSE(shared->state().winner_index.enabled);
  }
  SUBCASE("an open quote at the end: later rows would be read as part of it") {
    const std::string path = dir.File("torn.csv");
    AppendRaw(path, MakeBatch(rng, 1, 10, 2).rows + "1,\"Ana\n");
    auto shared = SharedSegment::Create(kAgencies);
    REQUIRE(shared);
    REQUIRE(Rebuild(path, *shared, kWinning));
    CHECK_FALSE(shared->state().winner_index.enabled);
    auto store = BetStore::Open(path, SyncMode::kNever);
    REQUIRE(store);
    Batch b = MakeBatch(rng, 2, 30, 2);
    REQUIRE(testing::AppendOneBatch(*store, b.rows, *shared, 2, 1, b.count, b.winners));
    CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));
  }
  SUBCASE("more winners than the index holds") {
    const std::string path = dir.File("many.csv");
    std::string rows;
    for (std::uint32_t i = 0; i <= kWinnerIndexCapacity; ++i) {
      rows += "1,Ana,Lopez," + std::to_string(i) + ",1990-01-01,7574\r\n";
    }
    AppendRaw(path, rows);
    auto shared = SharedSegment::Create(kAgencies);
    REQUIRE(shared);
    REQUIRE(Rebuild(path, *shared, kWinning));
    CHECK_FALSE(shared->state().winner_index.enabled);
    CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));
  }
}

TEST_CASE("a batch that does not fit in the index stops it; the draw scans from there") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::mt19937 rng(19);
  auto shared = SharedSegment::Create(kAgencies);
  REQUIRE(shared);
  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  REQUIRE(Rebuild(path, *shared, kWinning));
  std::uint64_t seq = 0;
  // Every bet wins: the index fills up after kWinnerIndexCapacity of them.
  const int per_batch = 5000;
  for (std::uint32_t total = 0; total <= kWinnerIndexCapacity + per_batch; total += per_batch) {
    Batch b = MakeBatch(rng, 4, per_batch, 1);
    REQUIRE(testing::AppendOneBatch(*store, b.rows, *shared, 4, ++seq, b.count, b.winners));
  }
  CHECK(IndexedEnd(*shared) < testing::ReadFile(path).size());
  CheckSame(Collect(path, *shared, kWinning), FullScan(path, kWinning));
}

}  // namespace
}  // namespace lottery
