#include "wire/bet.h"

#include <doctest/doctest.h>

#include <string>

namespace lottery {
namespace {

const Date kToday{2026, 11, 22};

BetView Valid() { return BetView{1, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 7574}; }

std::string Reason(const BetView& bet) {
  auto r = ValidateBet(bet, kToday);
  return r ? *r : "";
}

std::string Repeat(const std::string& s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

TEST_CASE("a valid bet passes") { CHECK(Reason(Valid()) == ""); }

TEST_CASE("names: 1 to 100 code points, counted as characters not bytes") {
  std::string hundred = Repeat("ñ", 100);  // 200 bytes
  BetView b = Valid();
  b.first_name = hundred;
  CHECK(Reason(b) == "");
  std::string more = Repeat("ñ", 101);
  b.first_name = more;
  CHECK(Reason(b).starts_with("first_name:"));
  b = Valid();
  b.last_name = "";
  CHECK(Reason(b) == "last_name: empty");
  std::string ascii = Repeat("a", 100);
  b.last_name = ascii;
  CHECK(Reason(b) == "");
}

TEST_CASE("names: punctuation is fine, controls and broken UTF-8 are not") {
  for (const char* ok : {"O'Brien", "Ana, María", "\"Pepe\"", "a|b", "Zoë", "日本", "😀"}) {
    CHECK_MESSAGE(!ValidateName(ok), ok);
  }
  for (std::string bad :
       {std::string("tab\there"), std::string("new\nline"), std::string("del\x7f"),
        std::string("c1\xc2\x85"), std::string("nul\0x", 5), std::string("overlong\xc0\x80"),
        std::string("lone\x80"), std::string("cut\xc3"), std::string("surrogate\xed\xa0\x80"),
        std::string("big\xf4\x90\x80\x80"), std::string("\xff")}) {
    CHECK_MESSAGE(ValidateName(bad).has_value(), bad);
  }
}

TEST_CASE(
    "names: every byte value at every position of short and long names (the 8-byte fast path)") {
  // Lengths around the 8-byte words and the 100-character limit.
  for (std::size_t length : {1u, 2u, 7u, 8u, 9u, 15u, 16u, 17u, 24u, 99u, 100u, 101u}) {
    for (std::size_t at = 0; at < length; ++at) {
      for (int b = 0; b < 256; ++b) {
        std::string name(length, 'x');
        name[at] = static_cast<char>(b);
        const bool formula = at == 0 && (b == '=' || b == '+' || b == '-' || b == '@');
        const bool printable = b >= 0x20 && b < 0x7f;
        const bool expected = printable && !formula && length <= 100;
        INFO("length ", length, " byte ", b, " at ", at);
        CHECK(!ValidateName(name).has_value() == expected);
      }
    }
  }
  // The same after a multi-byte character at every offset of a word.
  for (std::size_t before = 0; before < 10; ++before) {
    for (std::size_t after = 0; after < 10; ++after) {
      for (int b = 0; b < 256; ++b) {
        std::string name = std::string(before, 'x') + "\xc3\xb1" + std::string(after, 'y');
        name += static_cast<char>(b);
        name += 'z';
        const bool expected = b >= 0x20 && b < 0x7f;
        INFO("before ", before, " after ", after, " byte ", b);
        CHECK(!ValidateName(name).has_value() == expected);
      }
    }
  }
  // Multi-byte characters still take the code-point path and its limit.
  CHECK(!ValidateName(std::string(50, 'a') + "\xc3\xb1" + std::string(49, 'b')));
  CHECK(ValidateName(std::string(50, 'a') + "\xc3\xb1" + std::string(50, 'b')));
}

TEST_CASE("names: no spreadsheet formula, no invisible format or separator characters") {
  for (const char* bad : {"=HYPERLINK(\"http://x\")", "+1+1", "-1+1", "@SUM(1+1)", "=", "-"}) {
    auto why = ValidateName(bad);
    REQUIRE_MESSAGE(why.has_value(), bad);
    CHECK(why->find("formula") != std::string::npos);
  }
  // Inside a name they are ordinary punctuation.
  for (const char* ok : {"Ana-María", "a=b", "x+y", "mail@host", "O'Neil-Smith"}) {
    CHECK_MESSAGE(!ValidateName(ok), ok);
  }
  struct Case {
    const char* text;
    const char* code;
  };
  for (const Case& c : {Case{"evil\xe2\x80\xaegnp.exe", "U+202E"},  // right-to-left override
                        Case{"zero\xe2\x80\x8bwidth", "U+200B"},    // zero-width space
                        Case{"line\xe2\x80\xa8sep", "U+2028"},      // line separator
                        Case{"para\xe2\x80\xa9sep", "U+2029"},      // paragraph separator
                        Case{"soft\xc2\xadhyphen", "U+00AD"},       // soft hyphen
                        Case{"bom\xef\xbb\xbf", "U+FEFF"},          // zero-width no-break space
                        Case{"tag\xf3\xa0\x80\x81", "U+E0001"}}) {  // language tag
    auto why = ValidateName(c.text);
    REQUIRE_MESSAGE(why.has_value(), c.code);
    CHECK_MESSAGE(why->find(c.code) != std::string::npos, *why);
  }
  // Letters around them are fine: U+2027 and U+2030 are not format characters.
  CHECK_FALSE(
      ValidateName("a\xe2\x80\xa7"
                   "b"));
  CHECK_FALSE(
      ValidateName("a\xe2\x80\xb0"
                   "b"));
}

TEST_CASE("document: 1 to 10 ASCII digits, leading zeros kept") {
  BetView b = Valid();
  for (const char* ok : {"1", "0000000001", "9999999999", "00012345"}) {
    b.document = ok;
    CHECK_MESSAGE(Reason(b) == "", ok);
  }
  for (const char* bad : {"", "12345678901", "12a4", " 123", "-1", "١٢٣"}) {
    b.document = bad;
    CHECK_MESSAGE(Reason(b) == "document: not 1 to 10 digits", bad);
  }
}

TEST_CASE("birthdate: a real date from 1900 to today") {
  BetView b = Valid();
  auto check = [&](const char* date, const char* expected) {
    b.birthdate = date;
    CHECK_MESSAGE(Reason(b) == expected, date);
  };
  check("2000-02-29", "");
  check("1900-01-01", "");
  check("2026-11-22", "");  // today
  check("2026-11-23", "birthdate: in the future");
  check("1899-12-31", "birthdate: before 1900");
  check("1900-02-29", "birthdate: not a calendar date YYYY-MM-DD");
  check("2023-02-29", "birthdate: not a calendar date YYYY-MM-DD");
  check("2024-04-31", "birthdate: not a calendar date YYYY-MM-DD");
  check("2024-13-01", "birthdate: not a calendar date YYYY-MM-DD");
  check("2024-00-10", "birthdate: not a calendar date YYYY-MM-DD");
  check("1999-3-17", "birthdate: not a calendar date YYYY-MM-DD");
  check("17/03/1999", "birthdate: not a calendar date YYYY-MM-DD");
  check("", "birthdate: not a calendar date YYYY-MM-DD");
  check("1999-03-17 ", "birthdate: not a calendar date YYYY-MM-DD");
}

TEST_CASE("number: 0 to 9999") {
  BetView b = Valid();
  b.number = 0;
  CHECK(Reason(b) == "");
  b.number = 9999;
  CHECK(Reason(b) == "");
  b.number = 10000;
  CHECK(Reason(b) == "number: out of range 0..9999");
}

TEST_CASE("dates parse exactly and compare in calendar order") {
  auto d = ParseDate("2024-02-29");
  REQUIRE(d);
  CHECK(d->year == 2024);
  CHECK(d->month == 2);
  CHECK(d->day == 29);
  CHECK(*ParseDate("2024-01-31") < *ParseDate("2024-02-01"));
  CHECK(*ParseDate("1999-12-31") < *ParseDate("2000-01-01"));
  Date today = Today();
  CHECK(today.year >= 2024);
  CHECK(today.month >= 1);
  CHECK(today.month <= 12);
}

TEST_CASE("the draw rule") {
  BetView b = Valid();
  CHECK(HasWon(b, 7574));
  b.number = 7573;
  CHECK_FALSE(HasWon(b, 7574));
  CHECK(HasWon(b, 7573));
}

}  // namespace
}  // namespace lottery
