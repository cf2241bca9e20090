#include "wire/bet_row.h"

#include <bit>
#include <charconv>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/csv.h"

static_assert(std::endian::native == std::endian::little, "the number is read as a little-endian word");

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

// The classes of a row's bytes (at most 64), one bit per byte, bytes past
// the row's end clear. `bad` holds quotes, C0 controls and DEL; `high` the
// bytes >= 0x80; `lead` the 0xC3 bytes and `cont` the continuation bytes
// 0x80..0xBF, which a kernel may leave out (`has_utf8` false) and compute
// only when a name holds high bytes.
struct RowClasses {
  RowMask comma = 0, bad = 0, high = 0, digit = 0, lead = 0, cont = 0;
  bool has_utf8 = false;
};

// The shortcut for the common row, from the classes of its bytes instead of
// a branch per byte. It takes rows of 16 to 64 bytes, without quotes or
// control characters, whose names are ASCII or hold only U+00C0..U+00FF
// (0xC3 and one continuation byte: the accented letters of Spanish and its
// neighbours); anything else, and any row it would refuse, is left to
// CheckBetRow, the reference, which also says why. Both take a row they
// accept to the same bet (the tests and the messages fuzz target check it).
// `utf8` gives lead and cont when c.has_utf8 is false.
template <typename Utf8Classes>
inline bool FinishCommonRow(std::string_view row, const Date& today, BetView& bet, RowClasses c,
                            Utf8Classes utf8) {
  const std::size_t size = row.size();
  const char* bytes = row.data();
  // Straight-line where the data varies (comma places, name and number
  // lengths): a mispredicted branch costs more than the whole check.
  RowMask comma = c.comma;
  std::size_t at[4];
  for (std::size_t& i : at) {  // countr_zero(0) is 64: no comma left shows in at[3]
    i = static_cast<std::size_t>(std::countr_zero(comma));
    comma &= comma - 1;
  }
  // Five fields: four commas, not more.
  if ((c.bad | comma) != 0 || at[3] >= size) return false;
  // Names: non-empty, no formula start, and every byte >= 0x80 in them is
  // an 0xC3 followed by a continuation byte (U+00C0..U+00FF: no control or
  // format character among them). At most 64 bytes: within 100 characters.
  // Each check sets a bit of `fail` (no branch each); a byte is read only
  // once the positions before it are known to lie inside the row.
  unsigned fail = 0;
  fail |= at[0] == 0;
  fail |= at[1] == at[0] + 1;
  fail |= IsFormulaStart(bytes[0]);
  fail |= IsFormulaStart(bytes[at[0] + 1]);
  const RowMask names = Span(0, at[1]);
  fail |= (c.high & ~names) != 0;
  if (fail != 0) return false;
  if (!c.has_utf8 && (c.high & names) != 0) utf8(c);
  // With no high byte in the names both sides are empty.
  fail |= ((c.lead & names) << 1) != (c.cont & names);
  fail |= ((c.lead | c.cont) & names) != (c.high & names);
  // Document: 1..10 digits. Birthdate: DDDD-DD-DD. Number: 1..4 digits, no
  // leading zero (a row of at least 16 bytes has 4 bytes to read at its end).
  const std::size_t document_size = at[2] - at[1] - 1;
  const std::size_t b = at[2] + 1;
  const std::size_t n = at[3] + 1;
  const std::size_t number_size = size - n;
  fail |= document_size - 1 >= kMaxDocumentDigits;
  fail |= (~c.digit & Span(at[1] + 1, at[2])) != 0;
  fail |= at[3] - b != 10;
  fail |= number_size - 1 >= 4;
  fail |= (~c.digit & Span(n, size)) != 0;
  if (fail != 0) return false;
  const RowMask dashes = (RowMask{1} << (b + 4)) | (RowMask{1} << (b + 7));
  fail |= (~c.digit & Span(b, at[3])) != dashes;
  fail |= bytes[b + 4] != '-';
  fail |= bytes[b + 7] != '-';
  fail |= (number_size > 1) & (bytes[n] == '0');
  if (fail != 0) return false;
  auto digit = [bytes](std::size_t i) { return bytes[i] - '0'; };
  const int year = digit(b) * 1000 + digit(b + 1) * 100 + digit(b + 2) * 10 + digit(b + 3);
  const int month = digit(b + 5) * 10 + digit(b + 6);
  const int day = digit(b + 8) * 10 + digit(b + 9);
  // A real date from 1900 to today, compared as one number.
  auto packed = [](int y, int m, int d) { return (y << 9) | (m << 5) | d; };
  fail |= year < kMinBirthYear;
  fail |= month < 1;
  fail |= month > 12;
  fail |= day < 1;
  if (fail != 0 || day > DaysIn(year, month) ||
      packed(year, month, day) > packed(today.year, today.month, today.day)) {
    return false;
  }
  // The number from the row's last four bytes, the ones before it shifted
  // out (little-endian: the first byte is the lowest).
  std::uint32_t word;
  std::memcpy(&word, bytes + size - 4, 4);
  const unsigned drop = 8 * static_cast<unsigned>(4 - number_size);
  word = (word >> drop << drop) - (0x30303030u >> drop << drop);
  const std::uint32_t number = (word & 0xff) * 1000 + (word >> 8 & 0xff) * 100 +
                               (word >> 16 & 0xff) * 10 + (word >> 24);
  bet.first_name = std::string_view(bytes, at[0]);
  bet.last_name = std::string_view(bytes + at[0] + 1, at[1] - at[0] - 1);
  bet.document = std::string_view(bytes + at[1] + 1, document_size);
  bet.birthdate = std::string_view(bytes + b, 10);
  bet.number = number;
  return true;
}

#if defined(__SSE2__)
// The SSE2 kernel: each class from four 16-byte compares. A chunk that
// would run past the row's end is read as the row's last 16 bytes instead
// (never past its end) and its bits shifted down into place; bits of bytes
// the row does not have fall off or, past its end, are cleared. A fixed
// count of chunks: unrolled, no branch on the size.
bool ParseCommonRowSse2(std::string_view row, const Date& today, BetView& bet) {
  const std::size_t size = row.size();
  if (size < 16 || size > 64) return false;  // no valid row is shorter than 18 bytes
  const char* bytes = row.data();
  auto chunk = [bytes, size](std::size_t k, __m128i& v) {
    const std::size_t from = std::min(16 * k, size - 16);
    v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(bytes + from));
    return 16 * k - from;  // the shift, 0..48
  };
  auto bits = [](__m128i m, std::size_t k, std::size_t shift) {
    return (RowMask{static_cast<std::uint32_t>(_mm_movemask_epi8(m))} >> shift) << (16 * k);
  };
  RowClasses c;
  for (std::size_t k = 0; k < 4; ++k) {
    __m128i v;
    const std::size_t shift = chunk(k, v);
    c.comma |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(',')), k, shift);
    // Signed compares: bytes >= 0x80 are negative, so this holds them too
    // (taken out below with `high`) besides quotes, C0 controls and DEL.
    c.bad |= bits(_mm_or_si128(_mm_or_si128(_mm_cmplt_epi8(v, _mm_set1_epi8(0x20)),
                                            _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))),
                               _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))),
                  k, shift);
    c.high |= bits(v, k, shift);
    c.digit |= bits(_mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('0' - 1)),
                                  _mm_cmplt_epi8(v, _mm_set1_epi8('9' + 1))),
                    k, shift);
  }
  const RowMask valid = size == 64 ? ~RowMask{0} : (RowMask{1} << size) - 1;
  c.bad &= ~c.high & valid;
  c.comma &= valid;
  c.high &= valid;
  c.digit &= valid;
  return FinishCommonRow(row, today, bet, c, [&](RowClasses& rc) {
    for (std::size_t k = 0; k < 4; ++k) {
      __m128i v;
      const std::size_t shift = chunk(k, v);
      rc.lead |= bits(_mm_cmpeq_epi8(v, _mm_set1_epi8(static_cast<char>(0xC3))), k, shift);
      rc.cont |= bits(_mm_cmpeq_epi8(_mm_and_si128(v, _mm_set1_epi8(static_cast<char>(0xC0))),
                                     _mm_set1_epi8(static_cast<char>(0x80))),
                      k, shift);
    }
    rc.lead &= valid;
    rc.cont &= valid;
  });
}
#endif

#if defined(__x86_64__) && defined(__GNUC__)
// The AVX-512BW kernel: the row in one masked 64-byte load (bytes past its
// end read as zero and never touched in memory, so no page it does not own
// is read), each class one compare straight into a mask register.
__attribute__((target("avx512f,avx512bw,bmi,bmi2"))) bool ParseCommonRowAvx512(
    std::string_view row, const Date& today, BetView& bet) {
  const std::size_t size = row.size();
  if (size < 16 || size > 64) return false;
  const __mmask64 valid = size == 64 ? ~__mmask64{0} : (__mmask64{1} << size) - 1;
  const __m512i v = _mm512_maskz_loadu_epi8(valid, row.data());
  RowClasses c;
  c.comma = _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8(','));
  c.bad = _mm512_mask_cmplt_epu8_mask(valid, v, _mm512_set1_epi8(0x20)) |
          _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8(0x7f)) |
          _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8('"'));
  c.high = _mm512_movepi8_mask(v);
  c.digit = _mm512_mask_cmplt_epu8_mask(valid, _mm512_sub_epi8(v, _mm512_set1_epi8('0')),
                                        _mm512_set1_epi8(10));
  c.lead = _mm512_cmpeq_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(0xC3)));
  // Signed: 0x80..0xBF are the bytes below 0xC0 (-64) and at least -128.
  c.cont = _mm512_cmplt_epi8_mask(v, _mm512_set1_epi8(static_cast<char>(0xC0)));
  c.has_utf8 = true;
  return FinishCommonRow(row, today, bet, c, [](RowClasses&) {});
}

bool CpuHasAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
#endif

using CommonRowParser = bool (*)(std::string_view, const Date&, BetView&);

bool ParseCommonRowNone(std::string_view, const Date&, BetView&) { return false; }

CommonRowParser ParserOf(RowKernel kernel) {
  switch (kernel) {
#if defined(__SSE2__)
    case RowKernel::kSse2:
      return ParseCommonRowSse2;
#endif
#if defined(__x86_64__) && defined(__GNUC__)
    case RowKernel::kAvx512:
      return CpuHasAvx512() ? ParseCommonRowAvx512 : nullptr;
#endif
    case RowKernel::kNone:
      return ParseCommonRowNone;
    default:
      return nullptr;
  }
}

// The widest kernel this CPU runs.
CommonRowParser BestParser() {
  for (RowKernel k : {RowKernel::kAvx512, RowKernel::kSse2}) {
    if (CommonRowParser p = ParserOf(k)) return p;
  }
  return ParserOf(RowKernel::kNone);
}

// Chosen once, when the program starts (before main, so before any fork or
// thread): a plain load per row, no guard.
const CommonRowParser kBestParser = BestParser();

}  // namespace

std::optional<std::string> ParseBetRow(std::string_view row, const Date& today, BetView& bet,
                                       std::string& scratch) {
  if (kBestParser(row, today, bet)) return std::nullopt;
  return CheckBetRow(row, today, bet, scratch);
}

bool HasRowKernel(RowKernel kernel) { return ParserOf(kernel) != nullptr; }

std::optional<std::string> ParseBetRowWith(RowKernel kernel, std::string_view row,
                                           const Date& today, BetView& bet,
                                           std::string& scratch) {
  const CommonRowParser parser = ParserOf(kernel);
  if (parser != nullptr && parser(row, today, bet)) return std::nullopt;
  return CheckBetRow(row, today, bet, scratch);
}

}  // namespace lottery
