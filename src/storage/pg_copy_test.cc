#include "storage/pg_copy.h"

#include <doctest/doctest.h>

#include <cctype>
#include <string>

namespace lottery {
namespace {

// "00 08 ff" as bytes; spaces and newlines ignored.
std::string Hex(std::string_view text) {
  std::string out;
  int high = -1;
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) continue;
    const int v =
        std::isdigit(static_cast<unsigned char>(c)) ? c - '0' : std::tolower(c) - 'a' + 10;
    if (high < 0) {
      high = v;
    } else {
      out.push_back(static_cast<char>(high * 16 + v));
      high = -1;
    }
  }
  return out;
}

bool Split(std::string_view row, PgBetColumns& c) {
  static std::string first, last;
  return SplitBetsFileRow(row, c, first, last);
}

}  // namespace

TEST_CASE("the header and trailer are docs/STORAGE.md's bytes") {
  std::string out;
  AppendPgCopyHeader(out);
  CHECK(out == Hex("50 47 43 4f 50 59 0a ff 0d 0a 00  00 00 00 00  00 00 00 00"));
  out.clear();
  AppendPgCopyTrailer(out);
  CHECK(out == Hex("ff ff"));
}

TEST_CASE("a row with a quoted name becomes docs/STORAGE.md's tuple, byte for byte") {
  PgBetColumns c;
  REQUIRE(Split("7,Ana,\"O\"\"Neil, Jr\",00012345,1999-12-31,7574\r\n", c));
  CHECK(c.first_name == "Ana");
  CHECK(c.last_name == "O\"Neil, Jr");
  CHECK(c.document == "00012345");
  CHECK(c.birth_days == -1);
  CHECK(c.number == 7574);
  std::string out;
  AppendPgCopyTuple(out, 1, 7, 2, c);
  CHECK(out == Hex("00 08"
                   "00 00 00 08  00 00 00 00 00 00 00 01"
                   "00 00 00 04  00 00 00 07"
                   "00 00 00 08  00 00 00 00 00 00 00 02"
                   "00 00 00 03  41 6e 61"
                   "00 00 00 0a  4f 22 4e 65 69 6c 2c 20 4a 72"
                   "00 00 00 08  30 30 30 31 32 33 34 35"
                   "00 00 00 04  ff ff ff ff"
                   "00 00 00 04  00 00 1d 96"));
}

TEST_CASE("rows with and without their CRLF, quoted first names, UTF-8 names") {
  PgBetColumns c;
  REQUIRE(Split("1,\"Ana, María\",Pérez,7,2000-03-01,0", c));
  CHECK(c.first_name == "Ana, María");
  CHECK(c.last_name == "Pérez");
  CHECK(c.document == "7");
  CHECK(c.birth_days == 60);
  CHECK(c.number == 0);
  REQUIRE(Split("12,A,B,1234567890,1900-01-01,9999\r\n", c));
  CHECK(c.document == "1234567890");
  CHECK(c.birth_days == -36524);
  CHECK(c.number == 9999);
}

TEST_CASE("PgDateDays counts from 2000-01-01 across leap years and before 1970") {
  CHECK(PgDateDays(2000, 1, 1) == 0);
  CHECK(PgDateDays(1970, 1, 1) == -10957);
  CHECK(PgDateDays(2024, 2, 29) == 8825);
  CHECK(PgDateDays(2026, 12, 5) == 9835);
}

TEST_CASE("what is not a bets-file row is refused") {
  PgBetColumns c;
  for (std::string_view row :
       {"", "1", "x,Ana,B,1,2000-01-01,1", "1,Ana,B,1,2000-01-01", "1,Ana,B,1,2000-01-01,1,extra",
        "1,Ana,B,12a,2000-01-01,1", "1,Ana,B,,2000-01-01,1", "1,Ana,B,12345678901,2000-01-01,1",
        "1,Ana,B,1,2000/01/01,1", "1,Ana,B,1,2000-13-01,1", "1,Ana,B,1,2000-01-01,10000",
        "1,Ana,B,1,2000-01-01,", "1,\"Ana,B,1,2000-01-01,1", "1,\"Ana\"x,B,1,2000-01-01,1",
        "1,Ana,B,\"1\",2000-01-01,1"}) {
    CAPTURE(row);
    CHECK_FALSE(Split(row, c));
  }
}

}  // namespace lottery
