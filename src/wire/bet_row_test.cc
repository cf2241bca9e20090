#include "wire/bet_row.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstring>

#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "wire/row_kernels.h"

namespace lottery {
namespace {

const Date kToday{2026, 11, 22};

std::string fmt_date(unsigned year, unsigned month, unsigned day) {
  return fmt::format("{:04}-{:02}-{:02}", year, month, day);
}

std::string RowOf(const BetView& bet) {
  std::string out;
  AppendBetRowText(out, bet);
  return out;
}

// ParseBetRow's reason, "" when the row is accepted.
std::string Refusal(std::string_view row) {
  BetView bet;
  std::string scratch;
  auto why = ParseBetRow(row, kToday, bet, scratch);
  return why ? *why : "";
}

// The example rows of docs/STORAGE.md, without their agency column and line
// end: the bet rows the agency sends for them.
std::vector<std::string> DocumentedBetRows() {
  std::istringstream doc(testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md"));
  std::vector<std::string> rows;
  std::string line;
  while (std::getline(doc, line)) {
    if (line.starts_with("2,") && line.ends_with("\\r\\n")) {
      rows.push_back(line.substr(2, line.size() - 2 - 4));
    }
  }
  return rows;
}

TEST_CASE("the bet rows of docs/STORAGE.md's examples encode and parse back") {
  auto rows = DocumentedBetRows();
  REQUIRE(rows.size() >= 2);
  CHECK(rows[0] == "Santiago Lionel,Lorca,30904465,1999-03-17,2201");
  CHECK(rows[1] == "\"Ana \"\"la\"\" María, hija\",Núñez,00012345,1980-05-17,7574");
  const BetView expected[] = {
      {0, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201},
      {0, "Ana \"la\" María, hija", "Núñez", "00012345", "1980-05-17", 7574},
  };
  for (int i = 0; i < 2; ++i) {
    CHECK(RowOf(expected[i]) == rows[i]);
    BetView bet;
    std::string scratch;
    REQUIRE_FALSE(ParseBetRow(rows[i], kToday, bet, scratch));
    CHECK(bet.first_name == expected[i].first_name);
    CHECK(bet.last_name == expected[i].last_name);
    CHECK(bet.document == expected[i].document);
    CHECK(bet.birthdate == expected[i].birthdate);
    CHECK(bet.number == expected[i].number);
  }
}

TEST_CASE("BetRowSize is the size PutBetRow writes") {
  for (const BetView& bet : {BetView{0, "A", "B", "1", "1990-01-01", 0},
                             BetView{0, "x,y", "\"q\"", "0000000001", "2000-02-29", 9999},
                             BetView{0, "Ñandú", "O'Neil|Paz", "12", "1990-01-01", 10}}) {
    CHECK(RowOf(bet).size() == BetRowSize(bet));
  }
}

TEST_CASE("a row spelled in any other way than the canonical one is refused") {
  CHECK(Refusal("Ana,Paz,7,1990-01-01,5") == "");
  CHECK(Refusal("\"Ana\",Paz,7,1990-01-01,5").starts_with("first_name: quoted, but holds no"));
  CHECK(Refusal("Ana,\"Paz\",7,1990-01-01,5").starts_with("last_name: quoted, but holds no"));
  CHECK(Refusal("Ana,Paz,7,1990-01-01,05").starts_with("number: a leading zero"));
  CHECK(Refusal("Ana,Paz,7,1990-01-01,0") == "");
  CHECK(Refusal("A\"na,Paz,7,1990-01-01,5") ==
        "first_name: a double quote in a field that is not quoted");
  CHECK(Refusal("\"A,na,Paz,7,1990-01-01,5") == "first_name: no closing double quote");
  CHECK(Refusal("\"A,n\"a,Paz,7,1990-01-01,5") ==
        "first_name: characters after the closing double quote");
  CHECK(Refusal("\"A,\"\"n\",\"P,z\",7,1990-01-01,5") == "");
}

TEST_CASE("a row without five fields is refused as such") {
  for (std::string_view row : {"Ana", "Ana,Paz", "Ana,Paz,7", "Ana,Paz,7,1990-01-01",
                               "Ana,Paz,7,1990-01-01,5,6", "\"A,b\""}) {
    CAPTURE(row);
    CHECK(Refusal(row).starts_with("row: not 5 fields"));
  }
}

TEST_CASE("each rule of a valid bet is checked on the row, in ValidateBet's words") {
  CHECK(Refusal("") == "first_name: empty");
  CHECK(Refusal(",Paz,7,1990-01-01,5") == "first_name: empty");
  CHECK(Refusal("Ana,,7,1990-01-01,5") == "last_name: empty");
  CHECK(Refusal("=SUM(1),Paz,7,1990-01-01,5").starts_with("first_name: starts with '='"));
  CHECK(Refusal("Ana,Pa\tz,7,1990-01-01,5") == "last_name: control character");
  CHECK(Refusal("Ana,Pa\xff,7,1990-01-01,5") == "last_name: not valid UTF-8");
  CHECK(Refusal("Ana\u202e,Paz,7,1990-01-01,5") ==
        "first_name: invisible format or separator character U+202E");
  CHECK(Refusal(std::string(101, 'a') + ",Paz,7,1990-01-01,5") ==
        "first_name: longer than 100 characters");
  CHECK(Refusal(std::string(100, 'a') + ",Paz,7,1990-01-01,5") == "");
  CHECK(Refusal("Ana,Paz,,1990-01-01,5") == "document: not 1 to 10 digits");
  CHECK(Refusal("Ana,Paz,12345678901,1990-01-01,5") == "document: not 1 to 10 digits");
  CHECK(Refusal("Ana,Paz,12a,1990-01-01,5") == "document: not 1 to 10 digits");
  CHECK(Refusal("Ana,Paz,7,1990-02-30,5") == "birthdate: not a calendar date YYYY-MM-DD");
  CHECK(Refusal("Ana,Paz,7,1899-12-31,5") == "birthdate: before 1900");
  CHECK(Refusal("Ana,Paz,7,2026-11-23,5") == "birthdate: in the future");
  CHECK(Refusal("Ana,Paz,7,1990-01-01,") == "number: not an integer 0..9999");
  CHECK(Refusal("Ana,Paz,7,1990-01-01,5a") == "number: not an integer 0..9999");
  CHECK(Refusal("Ana,Paz,7,1990-01-01,10000") == "number: out of range 0..9999");
  CHECK(Refusal("Ana,Paz,7,1990-01-01,99999999999999999999") == "number: out of range 0..9999");
}

// Random bets over an alphabet of what matters to a row (separators,
// quotes, controls, multi-byte letters, digits): the row the encoder writes
// for any bet parses back to the same bet, refused exactly when ValidateBet
// refuses the bet and with the same reason. So the server, which stores the
// row as it came, accepts what it would accept as fields, and every row it
// accepts is the one it would have written.
TEST_CASE("encode then parse agrees with ValidateBet on random bets") {
  std::uint32_t state = 2026;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  const std::vector<std::string> pieces = {"a",  "Z", " ", ",", "\"", "'",    "ñ",      "é", "\r",
                                           "\n", "-", "=", "0", "7",  "\x7f", "\u200b", "|", "ab"};
  auto text = [&](std::size_t max) {
    std::string s;
    const std::size_t n = next() % max;
    for (std::size_t i = 0; i < n; ++i) s += pieces[next() % pieces.size()];
    return s;
  };
  auto digits = [&](std::size_t max) {
    std::string s;
    const std::size_t n = next() % max;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('0' + next() % 10);
    if (next() % 8 == 0) s += pieces[next() % pieces.size()];
    return s;
  };
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 20000; ++round) {
    // Half the bets have plain names, so that many are valid.
    const bool plain = next() % 2 == 0;
    std::string first = plain ? "Ana" : text(8), last = plain ? "Paz" : text(8);
    std::string document = digits(13);
    std::string birthdate = next() % 4 == 0
                                ? text(11)
                                : fmt_date(1890 + next() % 140, 1 + next() % 13, 1 + next() % 31);
    BetView bet{0, first, last, document, birthdate, static_cast<std::uint32_t>(next() % 10200)};
    const std::string row = RowOf(bet);
    auto expected = ValidateBet(bet, kToday);
    BetView parsed;
    std::string scratch;
    auto got = ParseBetRow(row, kToday, parsed, scratch);
    CAPTURE(row);
    REQUIRE(got.has_value() == expected.has_value());
    if (expected) {
      CHECK(*got == *expected);
      ++refused;
      continue;
    }
    ++accepted;
    CHECK(parsed.first_name == bet.first_name);
    CHECK(parsed.last_name == bet.last_name);
    CHECK(parsed.document == bet.document);
    CHECK(parsed.birthdate == bet.birthdate);
    CHECK(parsed.number == bet.number);
  }
  CHECK(accepted > 1000);
  CHECK(refused > 1000);
}

// Random rows, most of them not canonical: whatever ParseBetRow accepts is a
// valid bet that the encoder spells as exactly that row.
TEST_CASE("every row ParseBetRow accepts is a valid bet's one spelling") {
  std::uint32_t state = 7;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  // Each field in one of several spellings, canonical or not.
  const std::vector<std::vector<std::string>> spellings = {
      {"Ana", "\"Ana\"", "\"A,na\"", "A\"na", "\"A\"\"na\"", "\"A\"na\"", "ñ", "", "\"\"", " "},
      {"Paz", "\"P,z\"", "\"Paz\"", "P\r", "\"P", "\"\"\"\""},
      {"7", "07", "0012", "", " 7", "\"7\"", "12345678901"},
      {"1990-01-01", "1990-1-1", "\"1990-01-01\"", "1990-01-01 "},
      {"0", "00", "5", "05", "9999", "10000", " 5", "5,6", ""},
  };
  int accepted = 0;
  for (int round = 0; round < 50000; ++round) {
    std::string row;
    const std::size_t fields = 3 + next() % 3;
    for (std::size_t i = 0; i < fields; ++i) {
      if (i > 0) row += ',';
      const auto& choices = spellings[i];
      row += choices[next() % choices.size()];
    }
    BetView bet;
    std::string scratch;
    if (ParseBetRow(row, kToday, bet, scratch)) continue;
    ++accepted;
    CAPTURE(row);
    CHECK_FALSE(ValidateBet(bet, kToday));
    CHECK(RowOf(bet) == row);
  }
  CHECK(accepted > 100);
}

// ParseBetRow's shortcut for common rows and the field-by-field reference
// give the same answer and the same bet for every row: random rows built
// around what the shortcut decides on (lengths near 16, 48 and 64 bytes,
// Latin letters and the two-byte sequences that are not, digits, dashes).
TEST_CASE("the shortcut for common rows agrees with the reference on every row") {
  // Every kernel this CPU runs; the one ParseBetRow picks is among them.
  std::vector<RowKernel> kernels;
  for (RowKernel k : {RowKernel::kSse2, RowKernel::kAvx512}) {
    if (HasRowKernel(k)) kernels.push_back(k);
  }
#if defined(__x86_64__)
  REQUIRE(HasRowKernel(RowKernel::kSse2));  // every x86-64 has SSE2
#endif
  MESSAGE("kernels checked: " << kernels.size() << " (AVX-512BW: "
                              << (HasRowKernel(RowKernel::kAvx512) ? "yes" : "no") << ")");
  std::uint32_t state = 99;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  // A table: clang-format-14 would put each letter on a line of its own.
  // clang-format off
  const std::vector<std::string> letters = {
      "a", "Z", " ", "'", "ñ", "É", "ÿ", "\xc3", "\xc3(", "\xc2\xad", "\xc2\x85", "\xc2\xa0",
      "\xe2\x80\xae", "\xe6\x97\xa5", "-", "=", "@", "+", "\t", "\x7f", "\"", ",", "0"};
  // clang-format on
  auto name = [&] {
    std::string s;
    const std::size_t n = next() % 4 == 0 ? next() % 30 : 1 + next() % 8;
    for (std::size_t i = 0; i < n; ++i) {
      s += next() % 3 == 0 ? letters[next() % letters.size()] : std::string(1, 'a' + next() % 26);
    }
    return s;
  };
  auto digits = [&](std::size_t min, std::size_t max) {
    std::string s;
    const std::size_t n = min + next() % (max - min + 1);
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>('0' + next() % 10);
    if (next() % 16 == 0 && !s.empty()) s[next() % s.size()] = "a-/:\xc3"[next() % 5];
    return s;
  };
  const Date today{2026, 11, 22};
  int accepted = 0;
  int refused = 0;
  for (int round = 0; round < 200000; ++round) {
    std::string date = digits(4, 4) + "-" + digits(2, 2) + "-" + digits(2, 2);
    if (next() % 2 == 0) date = fmt_date(1890 + next() % 140, 1 + next() % 12, 1 + next() % 31);
    std::string row = name() + "," + name() + "," + digits(0, 11) + "," + date + "," + digits(0, 5);
    if (next() % 32 == 0) row += "," + digits(1, 2);
    if (next() % 32 == 0) row = row.substr(0, next() % (row.size() + 1));
    BetView reference;
    std::string scratch_reference;
    auto want = CheckBetRow(row, today, reference, scratch_reference);
    CAPTURE(row);
    want ? ++refused : ++accepted;
    for (std::size_t k = 0; k <= kernels.size(); ++k) {
      BetView fast;
      std::string scratch_fast;
      auto got = k == kernels.size() ? ParseBetRow(row, today, fast, scratch_fast)
                                     : ParseBetRowWith(kernels[k], row, today, fast, scratch_fast);
      CAPTURE(k);
      REQUIRE(got.has_value() == want.has_value());
      if (want) {
        CHECK(*got == *want);
        continue;
      }
      CHECK(fast.first_name == reference.first_name);
      CHECK(fast.last_name == reference.last_name);
      CHECK(fast.document == reference.document);
      CHECK(fast.birthdate == reference.birthdate);
      CHECK(fast.number == reference.number);
    }
  }
  CHECK(accepted > 5000);
  CHECK(refused > 5000);
}

// The kernels never read a byte outside the row: a row that ends where a
// page the process may not read begins, and one that starts at a page's
// first byte, are parsed like any other (a stray read would crash).
TEST_CASE("the kernels read only the row's own bytes") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  char* base = static_cast<char*>(map);
  REQUIRE(::mprotect(base, page, PROT_NONE) == 0);
  REQUIRE(::mprotect(base + 2 * page, page, PROT_NONE) == 0);
  char* const first = base + page;
  char* const end = base + 2 * page;
  const Date today{2026, 11, 22};
  // Of 18 (the shortest), 16..64 and longer, ASCII and accented.
  std::vector<std::string> rows = {"A,B,1,2000-01-01,7", "Ana,Paz,12345678,1999-12-31,9999",
                                   "María José,Núñez,1,1990-02-28,0"};
  rows.push_back(std::string(25, 'a') + "," + std::string(14, 'b') + ",1234567890,1990-01-01,1");
  rows.push_back(std::string(26, 'a') + "," + std::string(14, 'b') + ",1234567890,1990-01-01,1");
  for (const std::string& row : rows) {
    for (char* at : {end - row.size(), first}) {
      std::memcpy(at, row.data(), row.size());
      const std::string_view view(at, row.size());
      for (RowKernel k : {RowKernel::kNone, RowKernel::kSse2, RowKernel::kAvx512}) {
        if (!HasRowKernel(k)) continue;
        BetView bet;
        std::string scratch;
        CAPTURE(row);
        CHECK_FALSE(ParseBetRowWith(k, view, today, bet, scratch));
        CHECK(bet.document.data() == at + row.find(',', row.find(',') + 1) + 1);
      }
    }
  }
  CHECK(rows[3].size() == 64);
  CHECK(rows[4].size() == 65);
  // Refused rows whose last fields are cut short, so a check that read a
  // field's bytes before knowing its length would read past the row.
  for (std::string row :
       {"Ana Maria Pazzz,1,2,3,", "Ana Maria Pazzzzzz,x,1,2", "AnaMariaPazzzzzzz,1,2,",
        "Ana,Paz,12345678,1999-12-31,", "Ana,Paz,12345678,1999-12-3,1",
        "Ana,Paz,12345678,1999-12,1,2", "AnaMariaPazzzzzzzzz,Q,,,"}) {
    for (char* at : {end - row.size(), first}) {
      std::memcpy(at, row.data(), row.size());
      for (RowKernel k : {RowKernel::kNone, RowKernel::kSse2, RowKernel::kAvx512}) {
        if (!HasRowKernel(k)) continue;
        BetView bet;
        std::string scratch;
        CAPTURE(row);
        CHECK(ParseBetRowWith(k, std::string_view(at, row.size()), today, bet, scratch));
      }
    }
  }
  ::munmap(map, 3 * page);
}

// The agency's one pass over a dataset line: it takes a line exactly when
// the line ends within 64 bytes and the kernel's shortcut takes its row,
// and then agrees with the reference on the row, the bet and the line's end.
TEST_CASE("a common dataset line is found and checked in one pass") {
  std::vector<RowKernel> kernels;
  for (RowKernel k : {RowKernel::kNone, RowKernel::kSse2, RowKernel::kAvx512}) {
    if (HasRowKernel(k)) kernels.push_back(k);
  }
  const Date today{2026, 11, 22};
  std::uint32_t state = 7;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  const std::vector<std::string> pieces = {"a", "Z",  " ",  "ñ",  "É", ",", "\"",   "-",
                                           "=", "\r", "\n", "\t", "0", "9", "\xc3", "\xc2\xad"};
  auto some = [&](std::size_t max) {
    std::string s;
    for (std::size_t n = next() % (max + 1); n > 0; --n) {
      s += next() % 2 == 0 ? pieces[next() % pieces.size()] : std::string(1, 'a' + next() % 26);
    }
    return s;
  };
  const std::vector<std::string> ends = {"\n", "\r\n", "", "\r", "\n\n"};
  int taken = 0;
  for (int round = 0; round < 100000; ++round) {
    std::string row =
        next() % 4 == 0 ? some(70)
                        : some(12) + "," + some(12) + "," + std::to_string(next() % 100000) + "," +
                              fmt_date(1890 + next() % 140, 1 + next() % 12, 1 + next() % 31) +
                              "," + std::to_string(next() % 10001);
    const std::string text =
        row + ends[next() % ends.size()] + (next() % 2 ? "Ana,Paz,1,1990-01-01,7\n" : "");
    CAPTURE(text);
    const std::size_t lf = text.find('\n');
    std::size_t row_size = lf;
    if (lf != std::string::npos && lf > 0 && text[lf - 1] == '\r') --row_size;
    BetView reference;
    std::string scratch;
    const bool valid =
        lf != std::string::npos &&
        !CheckBetRow(std::string_view(text).substr(0, row_size), today, reference, scratch);
    std::vector<std::size_t> sizes;
    for (RowKernel k : kernels) {
      CAPTURE(static_cast<int>(k));
      BetView bet;
      std::size_t line_size = 0;
      const std::size_t size = ParseCommonLineWith(k, text, today, bet, line_size);
      if (k != RowKernel::kNone) sizes.push_back(size);
      if (size == 0) continue;
      REQUIRE(valid);
      REQUIRE(lf < 64);
      CHECK(size == row_size);
      CHECK(line_size == lf + 1);
      CHECK(bet.first_name == reference.first_name);
      CHECK(bet.last_name == reference.last_name);
      CHECK(bet.document == reference.document);
      CHECK(bet.document.data() >= text.data());  // a view into the line itself
      CHECK(bet.birthdate == reference.birthdate);
      CHECK(bet.number == reference.number);
    }
    // The kernels take the same lines; RowKernel::kNone takes none.
    for (std::size_t size : sizes) CHECK(size == sizes.front());
    if (!sizes.empty() && sizes.front() != 0) ++taken;
  }
  if (HasRowKernel(RowKernel::kSse2)) CHECK(taken > 1000);
  // The dataset's plain lines go the one-pass way with every kernel.
  for (std::string text : {"Ana,Paz,12345678,1990-01-01,7\n", "Luis,Núñez,1,1999-12-31,9999\r\nX",
                           "María José,Ibáñez Ordóñez,1234567890,1900-01-01,0\n"}) {
    for (RowKernel k : kernels) {
      if (k == RowKernel::kNone) continue;
      BetView bet;
      std::size_t line_size = 0;
      CAPTURE(text);
      CHECK(ParseCommonLineWith(k, text, today, bet, line_size) == text.find_first_of("\r\n"));
      CHECK(line_size == text.find('\n') + 1);
    }
  }
}

// The one pass reads no byte past the text it is given, wherever the text
// lies in its page: lines that end at a page the process may not read, with
// and without their line end, and text that starts at a page's first byte.
TEST_CASE("the one pass over a line reads only the text's own bytes") {
  const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  void* map = ::mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  REQUIRE(map != MAP_FAILED);
  char* base = static_cast<char*>(map);
  REQUIRE(::mprotect(base, page, PROT_NONE) == 0);
  REQUIRE(::mprotect(base + 2 * page, page, PROT_NONE) == 0);
  char* const first = base + page;
  char* const end = base + 2 * page;
  const Date today{2026, 11, 22};
  // Each text, and whether its first line is one the one pass takes.
  const std::string row63 =
      std::string(25, 'a') + "," + std::string(13, 'b') + ",1234567890,1990-01-01,1";
  const std::vector<std::pair<std::string, bool>> texts = {
      {"A,B,1,2000-01-01,7\n", true},
      {"Ana,Paz,12345678,1999-12-31,9999\r\n", true},
      {row63 + "\n", true},         // the line end is the 64th byte
      {"a" + row63 + "\n", false},  // the 65th: past one load
      {"Ana,Paz,12345678,1999-12-31,9999", false},
      {"Ana,Paz,12345678,1999-12-31,9999\r", false},
      {std::string(40, 'a') + "\n", false},
      {std::string(80, 'a'), false},
      {"\n", false}};
  for (const auto& [text, taken] : texts) {
    for (char* at : {end - text.size(), first}) {
      std::memcpy(at, text.data(), text.size());
      for (RowKernel k : {RowKernel::kNone, RowKernel::kSse2, RowKernel::kAvx512}) {
        if (!HasRowKernel(k)) continue;
        BetView bet;
        std::size_t line_size = 0;
        CAPTURE(text);
        const std::size_t size =
            ParseCommonLineWith(k, std::string_view(at, text.size()), today, bet, line_size);
        CHECK((size != 0) == (taken && k != RowKernel::kNone));
      }
    }
  }
  ::munmap(map, 3 * page);
}

}  // namespace
}  // namespace lottery
