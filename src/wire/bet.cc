#include "wire/bet.h"

#include <sys/random.h>

#include <algorithm>
#include <bit>
#include <cstdint>
#include <cstdio>
#include <ctime>

#include "common/swar.h"

namespace lottery {
namespace {

bool IsLeap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

bool AllDigits(std::string_view s) {
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

int ToInt(std::string_view digits) {
  int v = 0;
  for (char c : digits) v = v * 10 + (c - '0');
  return v;
}

// Decodes one UTF-8 code point at `pos`, advancing it. Returns -1 when the
// bytes are not well-formed UTF-8 (overlong, surrogate, > U+10FFFF, cut).
long DecodeUtf8(std::string_view s, std::size_t& pos) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  unsigned char b0 = byte(pos);
  if (b0 < 0x80) {
    ++pos;
    return b0;
  }
  int extra;
  long cp;
  long min;
  if ((b0 & 0xe0) == 0xc0) {
    extra = 1;
    cp = b0 & 0x1f;
    min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    extra = 2;
    cp = b0 & 0x0f;
    min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    extra = 3;
    cp = b0 & 0x07;
    min = 0x10000;
  } else {
    return -1;  // a continuation byte or 0xf8..0xff where a code point starts
  }
  if (s.size() - pos <= static_cast<std::size_t>(extra)) return -1;  // cut short
  for (int i = 1; i <= extra; ++i) {
    unsigned char b = byte(pos + static_cast<std::size_t>(i));
    if ((b & 0xc0) != 0x80) return -1;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return -1;
  pos += static_cast<std::size_t>(extra) + 1;
  return cp;
}

// Unicode's format characters (general category Cf, Unicode 15) and the line
// and paragraph separators: invisible, or they reorder how text is shown
// (U+202E turns "gpj.exe" around), so a stored name would not read as typed.
bool IsFormatOrSeparator(long cp) {
  struct Range {
    long first, last;
  };
  static constexpr Range kRanges[] = {
      {0x00AD, 0x00AD},   {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},
      {0x070F, 0x070F},   {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x180E, 0x180E},
      {0x200B, 0x200F},   {0x2028, 0x202E},   {0x2060, 0x2064},   {0x2066, 0x206F},
      {0xFEFF, 0xFEFF},   {0xFFF9, 0xFFFB},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD},
      {0x13430, 0x1343F}, {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0001, 0xE0001},
      {0xE0020, 0xE007F},
  };
  for (const Range& r : kRanges) {  // sorted: most letters stop at the first
    if (cp < r.first) return false;
    if (cp <= r.last) return true;
  }
  return false;
}

// Nonzero when a byte of the eight in `w` is not printable ASCII
// (0x20..0x7e): a high bit, a byte below 0x20, or 0x7f. Names are checked a
// word at a time where they are plain ASCII: a byte-at-a-time check was a
// tenth of the CPU of an agency and of a worker (docs/PERFORMANCE.md). The
// lowest flag is exact; the caller only uses that one.
std::uint64_t NotPrintableAscii(std::uint64_t w) {
  return (w & kWordHighs) | BytesBelow(w, 0x20) | BytesEqual(w, 0x7f);
}

}  // namespace

Date Today() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  return Date{tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday};
}

std::optional<Date> ParseDate(std::string_view text) {
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') return std::nullopt;
  std::string_view y = text.substr(0, 4), m = text.substr(5, 2), d = text.substr(8, 2);
  if (!AllDigits(y) || !AllDigits(m) || !AllDigits(d)) return std::nullopt;
  Date date{ToInt(y), ToInt(m), ToInt(d)};
  if (date.month < 1 || date.month > 12) return std::nullopt;
  if (date.day < 1 || date.day > DaysInMonth(date.year, date.month)) return std::nullopt;
  return date;
}

namespace {

// ValidateName's one loop. kRowField: `text` is the rest of a bet row and the
// name ends at its first ',' (or at the end of `text`), where `size` is set;
// a '"' in it is refused (a field holding one is quoted). Otherwise the name
// is all of `text` and ',' and '"' are ordinary characters.
template <bool kRowField>
std::optional<std::string> CheckName(std::string_view text, std::size_t& size) {
  if (text.empty() || (kRowField && text[0] == ',')) return "empty";
  // A spreadsheet runs a cell that starts with one of these as a formula
  // (=HYPERLINK(...), +1+1, -1+1, @SUM(...)): the bets file is opened in one.
  if (text[0] == '=' || text[0] == '+' || text[0] == '-' || text[0] == '@') {
    return std::string("starts with '") + text[0] + "' (a spreadsheet would run it as a formula)";
  }
  const std::size_t end = text.size();
  std::size_t pos = 0;
  std::size_t chars = 0;
  while (pos < end) {
    // The run of printable ASCII at `pos` (for a row field: neither ',' nor
    // '"'), up to eight bytes at a time, then one byte that is not.
    const std::size_t n = std::min<std::size_t>(end - pos, 8);
    const std::uint64_t w = LoadWordPadded(text.data() + pos, n, 'a');
    std::uint64_t bad = NotPrintableAscii(w);
    if constexpr (kRowField) bad |= BytesEqual(w, ',') | BytesEqual(w, '"');
    const std::size_t ascii = bad == 0 ? n : static_cast<std::size_t>(std::countr_zero(bad)) / 8;
    pos += ascii;
    chars += ascii;
    if (chars > kMaxNameChars) return "longer than 100 characters";
    if (bad == 0) continue;
    if constexpr (kRowField) {
      if (text[pos] == ',') break;
      if (text[pos] == '"') return "a double quote in a field that is not quoted";
    }
    long cp = DecodeUtf8(text, pos);
    if (cp < 0) return "not valid UTF-8";
    if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp <= 0x9f)) return "control character";
    if (IsFormatOrSeparator(cp)) {
      char code[24];
      std::snprintf(code, sizeof code, "U+%04lX", cp);
      return std::string("invisible format or separator character ") + code;
    }
    if (++chars > kMaxNameChars) return "longer than 100 characters";
  }
  size = pos;
  return std::nullopt;
}

}  // namespace

std::optional<std::string> ValidateName(std::string_view name) {
  std::size_t size = 0;
  return CheckName<false>(name, size);
}

std::optional<std::string> ValidateUnquotedNameField(std::string_view text, std::size_t& size) {
  return CheckName<true>(text, size);
}

bool IsDocument(std::string_view text) {
  return !text.empty() && text.size() <= kMaxDocumentDigits && AllDigits(text);
}

std::optional<std::string> ValidateBet(const BetView& bet, const Date& today) {
  if (auto why = ValidateName(bet.first_name)) return "first_name: " + *why;
  if (auto why = ValidateName(bet.last_name)) return "last_name: " + *why;
  if (!IsDocument(bet.document)) {
    return "document: not 1 to 10 digits";
  }
  auto date = ParseDate(bet.birthdate);
  if (!date) return "birthdate: not a calendar date YYYY-MM-DD";
  if (date->year < kMinBirthYear) return "birthdate: before 1900";
  if (*date > today) return "birthdate: in the future";
  if (bet.number > static_cast<std::uint32_t>(kMaxBetNumber)) return "number: out of range 0..9999";
  return std::nullopt;
}

std::optional<std::uint32_t> ParseBetNumber(std::string_view text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return v;
}

std::uint32_t DrawWinningNumber() {
  // Rejection sampling keeps every number equally likely: 4294960000 is the
  // largest multiple of 10000 that fits in 32 bits.
  constexpr std::uint32_t kLimit = 4294960000u;
  while (true) {
    std::uint32_t value = 0;
    ssize_t n = ::getrandom(&value, sizeof value, 0);
    if (n != static_cast<ssize_t>(sizeof value)) continue;  // EINTR: try again
    if (value < kLimit) return value % 10000;
  }
}

}  // namespace lottery
