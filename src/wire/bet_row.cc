#include "wire/bet_row.h"

#include <bit>
#include <charconv>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/csv.h"

namespace lottery {
namespace {

// The dialect's rule (common/csv.h): quoted only when it holds one of these.
bool NeedsQuotes(std::string_view field) {
  return field.find_first_of(",\"\r\n") != std::string_view::npos;
}

std::size_t FieldSize(std::string_view field) {
  if (!NeedsQuotes(field)) return field.size();
  std::size_t quotes = 0;
  for (char c : field) quotes += c == '"';
  return field.size() + quotes + 2;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The quoted name at row[pos] (a '"'): unquotes it into `scratch`, points
// `name` there and moves `pos` past the closing quote.
std::optional<std::string> ParseQuotedName(std::string_view row, std::size_t& pos,
                                           std::string& scratch, std::string_view& name) {
  const std::size_t from = scratch.size();
  std::size_t at = pos + 1;
  while (true) {
    const std::size_t quote = row.find('"', at);
    if (quote == std::string_view::npos) return "no closing double quote";
    scratch.append(row.substr(at, quote - at));
    if (quote + 1 < row.size() && row[quote + 1] == '"') {  // a doubled quote
      scratch.push_back('"');
      at = quote + 2;
      continue;
    }
    pos = quote + 1;
    break;
  }
  name = std::string_view(scratch).substr(from);
  if (auto why = ValidateName(name)) return why;
  // One spelling per bet: the stored row must be what the server would write.
  if (!NeedsQuotes(name)) return "quoted, but holds no ',' or '\"' (written without quotes)";
  if (pos < row.size() && row[pos] != ',') return "characters after the closing double quote";
  return std::nullopt;
}

}  // namespace

std::size_t BetRowSize(const BetView& bet) {
  char digits[16];
  const std::size_t number = static_cast<std::size_t>(
      std::to_chars(digits, digits + sizeof digits, bet.number).ptr - digits);
  return FieldSize(bet.first_name) + 1 + FieldSize(bet.last_name) + 1 + FieldSize(bet.document) +
         1 + FieldSize(bet.birthdate) + 1 + number;
}

char* PutBetRow(char* p, const BetView& bet) {
  p = PutCsvField(p, bet.first_name);
  *p++ = ',';
  p = PutCsvField(p, bet.last_name);
  *p++ = ',';
  p = PutCsvField(p, bet.document);
  *p++ = ',';
  p = PutCsvField(p, bet.birthdate);
  *p++ = ',';
  return std::to_chars(p, p + 10, bet.number).ptr;
}

void AppendBetRowText(std::string& out, const BetView& bet) {
  const std::size_t at = out.size();
  const std::size_t size = at + BetRowSize(bet);
  out.resize_and_overwrite(size, [&](char* base, std::size_t) {
    PutBetRow(base + at, bet);
    return size;
  });
}

std::optional<std::string> CheckBetRow(std::string_view row, const Date& today, BetView& bet,
                                       std::string& scratch) {
  constexpr const char* kFieldCount = "row: not 5 fields (first_name,last_name,document,birthdate,number)";
  scratch.clear();
  scratch.reserve(row.size());  // the names' views into it stay valid
  std::size_t pos = 0;
  for (int i = 0; i < 2; ++i) {
    const char* field = i == 0 ? "first_name: " : "last_name: ";
    std::string_view name;
    if (pos < row.size() && row[pos] == '"') {
      if (auto why = ParseQuotedName(row, pos, scratch, name)) return field + *why;
    } else {
      std::size_t size = 0;
      if (auto why = ValidateUnquotedNameField(row.substr(pos), size)) return field + *why;
      name = row.substr(pos, size);
      pos += size;
    }
    (i == 0 ? bet.first_name : bet.last_name) = name;
    if (pos == row.size()) return kFieldCount;
    ++pos;  // the ','
  }

  const std::size_t document_end = row.find(',', pos);
  if (document_end == std::string_view::npos) return kFieldCount;
  bet.document = row.substr(pos, document_end - pos);
  if (!IsDocument(bet.document)) return "document: not 1 to 10 digits";
  pos = document_end + 1;

  const std::size_t birthdate_end = row.find(',', pos);
  if (birthdate_end == std::string_view::npos) return kFieldCount;
  bet.birthdate = row.substr(pos, birthdate_end - pos);
  auto date = ParseDate(bet.birthdate);
  if (!date) return "birthdate: not a calendar date YYYY-MM-DD";
  if (date->year < kMinBirthYear) return "birthdate: before 1900";
  if (*date > today) return "birthdate: in the future";
  pos = birthdate_end + 1;

  const std::string_view number = row.substr(pos);
  std::uint32_t value = 0;
  for (char c : number) {
    if (c == ',') return kFieldCount;
    if (!IsDigit(c)) return "number: not an integer 0..9999";
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
    if (value > 999999) value = 999999;  // stays above the limit, cannot wrap
  }
  if (number.empty()) return "number: not an integer 0..9999";
  if (value > static_cast<std::uint32_t>(kMaxBetNumber)) return "number: out of range 0..9999";
  if (number.size() > 1 && number[0] == '0') {
    return "number: a leading zero (written without: 7, not 0007)";
  }
  bet.number = value;
  return std::nullopt;
}

namespace {

#if defined(__SSE2__)
// One bit per byte of a row of at most 64 bytes.
using RowMask = std::uint64_t;

// The bits of bytes [from, to), to - from < 64.
RowMask Span(std::size_t from, std::size_t to) {
  return ((RowMask{1} << (to - from)) - 1) << from;
}

bool IsFormulaStart(char c) { return c == '=' || c == '+' || c == '-' || c == '@'; }

int DaysIn(int year, int month) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  if (month != 2) return kDays[month - 1];  // the divisions only for February
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28;
}

// The shortcut for the common row, from masks: four 16-byte compares per
// class of byte (comma, digit, ...) instead of a branch per byte. It takes
// rows of at most 64 bytes, without quotes or control characters, whose
// names are ASCII or hold only U+00C0..U+00FF (0xC3 and one continuation
// byte: the accented letters of Spanish and its neighbours); anything else,
// and any row it would refuse, is left to CheckBetRow, the reference, which
// also says why. Both take a row they accept to the same bet (the tests and
// the messages fuzz target check it).
bool ParseCommonRow(std::string_view row, const Date& today, BetView& bet) {
  const std::size_t size = row.size();
  if (size < 16 || size > 64) return false;  // no valid row is shorter than 18 bytes
  const char* bytes = row.data();
  // A chunk that would run past the row's end is read as the row's last 16
  // bytes instead (never past its end) and its bits shifted down into place;
  // bits of bytes the row does not have fall off or, past its end, are
  // cleared with `valid`. A fixed count of chunks: unrolled, no branch on
  // the size.
  auto chunk = [bytes, size](std::size_t k, __m128i& v) {
    const std::size_t from = std::min(16 * k, size - 16);
    v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + from));
    return 16 * k - from;  // the shift, 0..48
  };
  auto bits = [](__m128i m, std::size_t k, std::size_t shift) {
    return (RowMask{static_cast<std::uint32_t>(_mm_movemask_epi8(m))} >> shift) << (16 * k);
  };
  RowMask comma = 0, bad = 0, high = 0, digit = 0;
  for (std::size_t k = 0; k < 4; ++k) {
    __m128i v;
    const std::size_t shift = chunk(k, v);
    comma |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), k, shift);
    // Signed compares: bytes >= 0x80 are negative, so `bad` holds them too
    // (taken out below with `high`) besides quotes, C0 controls and DEL.
    bad |= bits(_mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                          _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
                             _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
                k, shift);
    high |= bits(v, k, shift);
    digit |= bits(_mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1))),
                  k, shift);
  }
  const RowMask valid = size == 64 ? ~RowMask{0} : (RowMask{1} << size) - 1;
  if ((bad & ~high & valid) != 0) return false;
  comma &= valid;
  std::size_t at[4];
  for (std::size_t& c : at) {  // (std::popcount is a library call without -mpopcnt)
    if (comma == 0) return false;
    c = static_cast<std::size_t>(std::countr_zero(comma));
    comma &= comma - 1;
  }
  if (comma != 0) return false;  // more than five fields
  // Names: non-empty, no formula start, and every byte >= 0x80 in them is
  // an 0xC3 followed by a continuation byte (U+00C0..U+00FF: no control or
  // format character among them). At most 64 bytes: within 100 characters.
  if (at[0] == 0 || at[1] == at[0] + 1 || IsFormulaStart(bytes[0]) ||
      IsFormulaStart(bytes[at[0] + 1])) {
    return false;
  }
  const RowMask names = Span(0, at[1]);
  if ((high & valid & ~names) != 0) return false;
  if ((high & names) != 0) {
    RowMask lead = 0, cont = 0;
    for (std::size_t k = 0; k < 4; ++k) {
      __m128i v;
      const std::size_t shift = chunk(k, v);
      lead |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(0xC3))), k, shift);
      cont |= bits(_mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(static_cast<char>(0xC0))),
                                  _mm_set1_epi8(static_cast<char>(0x80))),
                   k, shift);
    }
    if (((lead & names) << 1) != (cont & names) || ((lead | cont) & names) != (high & names)) {
      return false;
    }
  }
  // Document: 1..10 digits.
  const std::size_t document_size = at[2] - at[1] - 1;
  if (document_size == 0 || document_size > kMaxDocumentDigits ||
      (~digit & Span(at[1] + 1, at[2])) != 0) {
    return false;
  }
  // Birthdate: DDDD-DD-DD, a real date from 1900 to today.
  const std::size_t b = at[2] + 1;
  if (at[3] - b != 10) return false;
  const RowMask dashes = (RowMask{1} << (b + 4)) | (RowMask{1} << (b + 7));
  if (bytes[b + 4] != '-' || bytes[b + 7] != '-' || (~digit & Span(b, at[3])) != dashes) {
    return false;
  }
  auto num = [&](std::size_t from, std::size_t n) {
    int v = 0;
    for (std::size_t i = 0; i < n; ++i) v = v * 10 + (bytes[from + i] - '0');
    return v;
  };
  const Date date{num(b, 4), num(b + 5, 2), num(b + 8, 2)};
  if (date.year < kMinBirthYear || date.month < 1 || date.month > 12 || date.day < 1 ||
      date.day > DaysIn(date.year, date.month) || date > today) {
    return false;
  }
  // Number: 1..4 digits, no leading zero.
  const std::size_t n = at[3] + 1;
  const std::size_t number_size = size - n;
  if (number_size == 0 || number_size > 4 || (~digit & Span(n, size)) != 0 ||
      (number_size > 1 && bytes[n] == '0')) {
    return false;
  }
  bet.first_name = std::string_view(bytes, at[0]);
  bet.last_name = std::string_view(bytes + at[0] + 1, at[1] - at[0] - 1);
  bet.document = std::string_view(bytes + at[1] + 1, document_size);
  bet.birthdate = std::string_view(bytes + b, 10);
  bet.number = static_cast<std::uint32_t>(num(n, number_size));
  return true;
}
#else
bool ParseCommonRow(std::string_view, const Date&, BetView&) { return false; }
#endif

}  // namespace

std::optional<std::string> ParseBetRow(std::string_view row, const Date& today, BetView& bet,
                                       std::string& scratch) {
  if (ParseCommonRow(row, today, bet)) return std::nullopt;
  return CheckBetRow(row, today, bet, scratch);
}

}  // namespace lottery
