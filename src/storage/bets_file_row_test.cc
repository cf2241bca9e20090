#include "storage/bets_file_row.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "wire/bet_row.h"

namespace lottery {
namespace {

TEST_CASE("a bets-file row has six columns and CRLF") {
  std::string row;
  AppendBetRow(row, BetView{12, "José", "Pérez, Jr.", "00123", "1980-01-02", 42});
  CHECK(row == "12,José,\"Pérez, Jr.\",00123,1980-01-02,42\r\n");
}

TEST_CASE("a row stored from its bet row is the row AppendBetRow writes") {
  const BetView bets[] = {{12, "José", "Pérez, Jr.", "00123", "1980-01-02", 42},
                          {1, "Ana \"la\"", "Paz", "7", "1990-01-01", 0},
                          {4000000000u, "a|b", "O'Neil", "9999999999", "2000-02-29", 9999}};
  for (const BetView& bet : bets) {
    std::string expected;
    AppendBetRow(expected, bet);
    std::string bet_row;
    AppendBetRowText(bet_row, bet);
    std::string stored = "kept";
    AppendStoredRow(stored, AgencyColumn(bet.agency), bet_row);
    CHECK(stored == "kept" + expected);
  }
}

TEST_CASE("write then read gives the same bet back") {
  std::vector<std::string> names = {"José", "O'Brien, \"Jr.\"", "a|b", "日本語", "x\r\ny", ","};
  std::string text;
  for (std::size_t i = 0; i < names.size(); ++i) {
    AppendBetRow(text, BetView{3, names[i], names[names.size() - 1 - i], "0001", "2000-02-29",
                               static_cast<std::uint32_t>(i)});
  }
  testing::TempDir dir;
  std::ofstream(dir.File("b.csv"), std::ios::binary) << text;
  UniqueFd fd(::open(dir.File("b.csv").c_str(), O_RDONLY));
  CsvReader reader(fd.get());
  for (std::size_t i = 0; i < names.size(); ++i) {
    auto next = reader.Next();
    REQUIRE(next);
    REQUIRE(next->has_value());
    auto bet = StoredRecordToBet(***next);
    REQUIRE(bet);
    CHECK(bet->agency == 3);
    CHECK(bet->first_name == names[i]);
    CHECK(bet->last_name == names[names.size() - 1 - i]);
    CHECK(bet->document == "0001");
    CHECK(bet->number == i);
  }
}

TEST_CASE("stored records become bets or say why not") {
  CsvRecord s;
  std::vector<std::string> stored = {"7", "Ana", "Paz", "123", "1990-01-01", "0"};
  for (auto& f : stored) s.fields.push_back(f);
  auto b = StoredRecordToBet(s);
  REQUIRE(b);
  CHECK(b->agency == 7);
  s.fields[0] = "0";
  CHECK_FALSE(StoredRecordToBet(s));
  s.fields[0] = "x";
  CHECK_FALSE(StoredRecordToBet(s));
}

TEST_CASE("the last row ends after the last LF") {
  testing::TempDir dir;
  struct Case {
    std::string text;
    std::uint64_t end;
  };
  const std::string big(9000, 'x');
  for (const Case& c : {Case{"", 0}, Case{"1,a\r\n", 5}, Case{"1,a\r\n2,b", 5},
                        Case{"no line end", 0}, Case{"1,a\r\n" + big, 5}, Case{big + "\n", 9001}}) {
    std::ofstream(dir.File("b.csv"), std::ios::binary | std::ios::trunc) << c.text;
    UniqueFd fd(::open(dir.File("b.csv").c_str(), O_RDONLY));
    auto end = LastRowEnd(fd.get(), c.text.size());
    REQUIRE(end);
    CHECK(*end == c.end);
  }
}

}  // namespace
}  // namespace lottery
