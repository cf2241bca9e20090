#include "storage/winner_scan.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/csv.h"
#include "common/test_util.h"
#include "common/unique_fd.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"
#include "storage/store_test_util.h"
#include "wire/bet.h"

namespace lottery {
namespace {

constexpr std::uint32_t kWinning = 7574;

void WriteFile(const std::string& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
  REQUIRE(out.good());
}

// The draw as it was before ScanWinners: the reference reader
// (testing::ForEachStoredBet) and HasWon.
// The scanner must agree with it.
WinnerScan OldDraw(const std::string& path, std::uint32_t agencies, std::uint32_t winning) {
  auto store = BetStore::Open(path, SyncMode::kNever);
  REQUIRE(store);
  WinnerScan out;
  out.winners.resize(agencies + 1);
  REQUIRE(testing::ForEachStoredBet(
      store->path(),
      [&](const BetView& bet) {
        ++out.bets;
        if (bet.agency < 1 || bet.agency > agencies) {
          ++out.foreign;
          return;
        }
        if (HasWon(bet, winning)) out.winners[bet.agency].emplace_back(bet.document);
      },
      out.skipped));
  return out;
}

WinnerScan Scan(const std::string& path, std::uint32_t agencies, std::uint32_t winning,
                std::size_t chunk) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  REQUIRE(fd);
  auto scan = ScanWinners(fd.get(), agencies, winning, chunk);
  REQUIRE(scan);
  // pread only: the descriptor's offset is untouched.
  CHECK(::lseek(fd.get(), 0, SEEK_CUR) == 0);
  return std::move(*scan);
}

void CheckSame(const WinnerScan& got, const WinnerScan& want) {
  CHECK(got.bets == want.bets);
  CHECK(got.skipped == want.skipped);
  CHECK(got.foreign == want.foreign);
  CHECK(got.winners == want.winners);
}

// Writes `contents` as a bets file and checks that ScanWinners, at every
// chunk size given, returns what the old draw returns. Returns that result.
WinnerScan CrossCheck(const std::string& contents, std::uint32_t agencies,
                      const std::vector<std::size_t>& chunks = {1, 2, 3, 5, 7, 13, 64, 4096,
                                                                kScanChunkBytes}) {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteFile(path, contents);
  WinnerScan want = OldDraw(path, agencies, kWinning);
  for (std::size_t chunk : chunks) {
    CAPTURE(chunk);
    CheckSame(Scan(path, agencies, kWinning, chunk), want);
  }
  return want;
}

std::string Row(std::uint32_t agency, std::string_view first, std::string_view last,
                std::string_view document, std::uint32_t number) {
  std::string row;
  AppendBetRow(row, BetView{agency, first, last, document, "1980-05-17", number});
  return row;
}

TEST_CASE("a generated file: plain and quoted names, many winners, foreign agencies") {
  const char* firsts[] = {"Ana",
                          "Ana, \"la\" María",
                          "Santiago Lionel",
                          "\"Quoted\"",
                          "O'Neil",
                          "a|b",
                          "Núñez, Jr.",
                          "x\"y",
                          "María",
                          "Zoë",
                          "\xff\xfe\x80"};
  const char* lasts[] = {"Lorca", "Pérez, hijo", "Smith", "\"\"", "D,E,F", "Núñez", "Ñ"};
  std::mt19937 rng(12345);
  std::string contents;
  std::uint64_t rows = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::uint32_t agency = static_cast<std::uint32_t>(rng() % 7);  // 0 and 6 are not 1..5
    const std::uint32_t number =
        rng() % 4 == 0 ? kWinning : static_cast<std::uint32_t>(rng() % 10000);
    std::string document = std::to_string(rng() % 100000000);
    if (rng() % 3 == 0) document.insert(0, "00");
    contents += Row(agency, firsts[rng() % std::size(firsts)], lasts[rng() % std::size(lasts)],
                    document, number);
    ++rows;
  }
  WinnerScan want = CrossCheck(contents, 5, {7, 64, 4096, 65537, kScanChunkBytes});
  // Agency 0 does not parse (StoredRecordToBet); 6 is foreign with N = 5.
  CHECK(want.bets + want.skipped == rows);
  CHECK(want.skipped > 1000);
  CHECK(want.foreign > 1000);
  std::uint64_t winners = 0;
  for (const auto& docs : want.winners) winners += docs.size();
  CHECK(winners > 1000);
  CHECK(want.winners[0].empty());
}

TEST_CASE("counts, winners and skips of a small file, exactly") {
  std::string contents = Row(1, "Ana", "Lopez", "00012345", kWinning) +  // winner, agency 1
                         Row(2, "B, \"b\"", "Ruiz", "22", kWinning) +    // winner, quoted name
                         Row(2, "Carla", "Diaz", "23", 1) +              // a bet, no prize
                         Row(3, "Foreign", "X", "33", kWinning) +        // foreign with N = 2
                         "0,Zero,X,44,1990-01-01,7574\r\n"               // agency 0: skipped
                         "garbage\r\n"                                   // skipped
                         "1,a,b,c,d\r\n"                                 // 5 columns: skipped
                         "1,a,b,c,d,12345\r\n"                           // number: skipped
                         "1,a\"b,c,d,e,7574\r\n"                         // stray quote: skipped
                         "\r\n"                                          // blank: not counted
                         "1,Tail,X,55,1990-01-01,7574";                  // torn: skipped
  WinnerScan got = CrossCheck(contents, 2);
  CHECK(got.bets == 4);
  CHECK(got.foreign == 1);
  CHECK(got.skipped == 6);
  CHECK(got.winners == std::vector<std::vector<std::string>>{{}, {"00012345"}, {"22"}});
}

TEST_CASE("an empty file, blank lines only, a BOM only") {
  for (const std::string& contents :
       {std::string(), std::string("\r\n\n\r"), std::string("\xEF\xBB\xBF")}) {
    WinnerScan got = CrossCheck(contents, 3);
    CHECK(got.bets == 0);
    CHECK(got.skipped == 0);
    CHECK(got.foreign == 0);
    CHECK(got.winners.size() == 4);
  }
}

TEST_CASE("lines that are not the writer's own take CsvReader's rules") {
  std::string contents =
      "\xEF\xBB\xBF"                                       // BOM, skipped
      "1,a,b,0001,1980-01-01,7574\n"                       // LF only: a bet
      "2,a,b,0002,1980-01-01,7574\r2,c,d,0003,x,7574\r\n"  // a lone CR ends a record
      "\"1\",a,b,0004,1980-01-01,\"7574\"\r\n"             // quoted agency and number
      "002,a,b,0005,1980-01-01,7574\r\n"                   // leading zeros in the agency
      "0000000000001,a,b,0006,1980-01-01,7574\r\n"         // 13 digits, still agency 1
      "99999999999,a,b,0007,1980-01-01,7574\r\n"           // agency overflows: skipped
      "1,\"multi\nline\",b,0008,1980-01-01,7574\r\n"       // quoted LF: one record
      "1,\"x\"y,b,0009,1980-01-01,7574\r\n"                // text after a closing quote
      "1,\"unterminated,b,0010,1980-01-01,7574\r\n"        // quote never closed...
      "2,a,b,0011,1980-01-01,7574\r\n"                     // ...the next line is read anew
      "1,a,b,0012,1980-01-01,07574\r\n"                    // number of 5 digits: skipped
      "1,a,b,0013,1980-01-01,0\r\n"                        // number 0: a bet
      "1,a,b,0014,1980-01-01, 7574\r\n"                    // space in the number: skipped
      "1,,,,,7574\r\n"                                     // empty fields: a winning bet
      "1,a,b,c,d,e,7574\r\n"                               // 7 columns: skipped
      "1,a,b,c,d,e,12\r\n"                                 // the same, not winning
      "1,a,b,c,d12\r\n"                                    // 5 columns: skipped
      "1,a,b,c\rd,12\r\n"                                  // CR inside: two records, skipped
      "1,a,b\"c,d,12\r\n"                                  // stray quote: skipped
      "1,a,b,c,d,12\n"                                     // LF only, not winning
      "1234567890,a,b,c,d,12\r\n"                          // 10-digit agency, foreign
      "1,a,b,0015,1980-01-01,7574\r\r\n"                   // CR CR LF: a bet and a blank
      "\r";                                                // a lone CR at the end: blank
  WinnerScan got = CrossCheck(contents, 2);
  CHECK(got.bets == 13);
  CHECK(got.foreign == 1);
  CHECK(got.skipped == 11);
  CHECK(got.winners[1] == std::vector<std::string>{"0001", "0004", "0006", "0008", "", "0015"});
  CHECK(got.winners[2] == std::vector<std::string>{"0002", "0003", "0005", "0011"});
}

TEST_CASE("a torn last line is skipped however it was cut") {
  const std::string row = Row(1, "Ana, \"la\"", "Lopez", "00012345", kWinning);
  const std::string plain = Row(1, "Ana", "Lopez", "00012345", kWinning);
  for (const std::string& last : {row, plain}) {
    for (std::size_t cut = 1; cut <= last.size(); ++cut) {
      CAPTURE(cut);
      WinnerScan got = CrossCheck(plain + last.substr(0, cut), 1, {1, 3, kScanChunkBytes});
      CHECK(got.bets == (cut == last.size() ? 2u : 1u));
    }
  }
}

TEST_CASE("rows straddle every chunk boundary") {
  std::string contents;
  for (int i = 0; i < 300; ++i) {
    contents += Row(1 + i % 3, i % 2 ? "Ana, \"la\"" : "Ana", "Lopez", "000" + std::to_string(i),
                    i % 5 == 0 ? kWinning : 17);
  }
  std::vector<std::size_t> chunks;
  for (std::size_t c = 1; c <= 97; ++c) chunks.push_back(c);
  WinnerScan got = CrossCheck(contents, 3, chunks);
  CHECK(got.bets == 300);
  CHECK(got.winners[1].size() + got.winners[2].size() + got.winners[3].size() == 60);
  CHECK(got.winners[1].front() == "0000");
}

TEST_CASE("records longer than 64 KiB are skipped, as CsvReader skips them") {
  const std::string tail = ",b,0001,1980-01-01,7574\r\n";
  const std::string losing_tail = ",b,0001,1980-01-01,7573\r\n";
  auto plain_of = [&](std::size_t total) {
    return "1," + std::string(total - 2 - tail.size(), 'a') + tail;
  };
  auto losing_of = [&](std::size_t total) {
    return "1," + std::string(total - 2 - losing_tail.size(), 'a') + losing_tail;
  };
  auto quoted_of = [&](std::size_t total) {
    return "1,\"a," + std::string(total - 6 - tail.size(), 'a') + "\"" + tail;
  };
  const std::string after = Row(2, "Ana", "Lopez", "7", kWinning);
  for (std::size_t total :
       {std::size_t{65535}, std::size_t{65536}, std::size_t{65537}, std::size_t{200000}}) {
    CAPTURE(total);
    const bool fits = total <= 64 * 1024;
    for (const std::string& row : {plain_of(total), quoted_of(total), losing_of(total)}) {
      REQUIRE(row.size() == total);
      WinnerScan got = CrossCheck(row + after, 2, {1000, 65536, kScanChunkBytes});
      CHECK(got.bets == (fits ? 2u : 1u));
      CHECK(got.skipped == (fits ? 0u : 1u));
      CHECK(got.winners[2] == std::vector<std::string>{"7"});
    }
    WinnerScan got = CrossCheck(plain_of(total) + after, 2, {kScanChunkBytes});
    CHECK(got.winners[1].size() == (fits ? 1u : 0u));
  }
  // A long line without a line end at all, then a row.
  WinnerScan got = CrossCheck(std::string(300000, 'x') + "\n" + after, 2, {4096, kScanChunkBytes});
  CHECK(got.skipped == 1);
  CHECK(got.bets == 1);
}

// Random lines built from pieces that hit every rule, some mutated byte by
// byte; the scanner must agree with the old reader on each file.
TEST_CASE("random malformed files agree with the reference reader") {
  const char* pieces[] = {"1",          "2",    "3",       "0",          "007",    "99999999999",
                          "a",          "a b",  "\"x,y\"", "\"q\"\"q\"", "\"open", "",
                          "1980-01-01", "7574", "12345",   "\"7574\"",   "0001",   "x\"",
                          "\"\"",       "\r",   "12",      "5",          "5",      "12",
                          "Núñez",      "\xff", "\x80\x7f"};
  const char* ends[] = {"\r\n", "\r\n", "\r\n", "\n", "\r", "", " \r\n", "\"\r\n", "\r\r\n"};
  std::mt19937 rng(777);
  for (int file = 0; file < 1000; ++file) {
    std::string contents;
    const int lines = static_cast<int>(rng() % 12);
    for (int l = 0; l < lines; ++l) {
      const int fields = rng() % 4 == 0 ? static_cast<int>(rng() % 9) : 6;
      for (int f = 0; f < fields; ++f) {
        if (f > 0) contents += ',';
        contents += pieces[rng() % std::size(pieces)];
      }
      contents += ends[rng() % std::size(ends)];
    }
    if (!contents.empty() && rng() % 2 == 0) {
      for (int m = static_cast<int>(rng() % 4); m > 0; --m) {
        const char bytes[] = {',', '"', '\r', '\n', '7', 'a', '\0', '\xc3', '\xff', '\x80'};
        contents[rng() % contents.size()] = bytes[rng() % std::size(bytes)];
      }
    }
    CAPTURE(testing::Hex(contents));
    CrossCheck(contents, 2, {1, 2, 5, kScanChunkBytes});
  }
}

TEST_CASE("a descriptor that cannot be read is an error, not an empty draw") {
  CHECK_FALSE(ScanWinners(-1, 2, kWinning));
  testing::TempDir dir;
  UniqueFd directory(::open(dir.path().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(directory);
  auto scan = ScanWinners(directory.get(), 2, kWinning);
  REQUIRE_FALSE(scan);
  CHECK(scan.error().sys_errno == EISDIR);
}

}  // namespace
}  // namespace lottery
