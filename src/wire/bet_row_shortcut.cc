// ParseBetRow's shortcut for common rows (wire/bet_row.h): the classes of
// a row's bytes from vector compares, the kernels that compute them (SSE2,
// AVX-512BW) and the check that runs on them, and the kernel chosen at start.
// CheckBetRow (bet_row.cc) is the reference each kernel must agree with.
#include <bit>
#include <cassert>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "wire/bet_row.h"
#include "wire/row_kernels.h"

static_assert(std::endian::native == std::endian::little,
              "the number is read as a little-endian word");

namespace lottery {

namespace {

// One bit per byte of a row of at most 64 bytes.
using RowMask = std::uint64_t;

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

// The bits of bytes [0, n), n <= 64.
inline RowMask LowBits(std::size_t n) { return n >= 64 ? ~RowMask{0} : (RowMask{1} << n) - 1; }

// Days in each month, February at 29 (checked apart); 0 for months that
// do not exist, which then fail the day's check.
constexpr std::uint8_t kMaxDay[16] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31, 0, 0, 0};

// The four digits of a year from one little-endian word (the first byte is
// the lowest): pairs, then the pairs.
[[gnu::always_inline]] inline int ReadYear(const char* digits) {
  std::uint32_t y;
  std::memcpy(&y, digits, 4);
  y -= 0x30303030u;
  y = y * 10 + (y >> 8);
  return static_cast<int>((y & 0xff) * 100 + (y >> 16 & 0xff));
}

// The number of `size` (1..4) digits that ends at `end`, from the four
// bytes before `end`, the ones before the number shifted out.
[[gnu::always_inline]] inline std::uint32_t ReadNumber(const char* end, std::size_t size) {
  std::uint32_t word;
  std::memcpy(&word, end - 4, 4);
  const unsigned drop = 8 * static_cast<unsigned>(4 - size);
  word = (word >> drop << drop) - (0x30303030u >> drop << drop);
  return (word & 0xff) * 1000 + (word >> 8 & 0xff) * 100 + (word >> 16 & 0xff) * 10 + (word >> 24);
}

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
  // lengths): a mispredicted branch costs more than the whole check. Each
  // check sets a bit of `fail`, and a few branches on it, all predicted
  // taken the same way, stop before a position outside the row is used.
  // The commas' places, in registers (an array of them went to the stack).
  // countr_zero(0) is 64: a missing comma fails below.
  RowMask comma = c.comma;
  auto take = [&comma] {
    const auto i = static_cast<std::size_t>(std::countr_zero(comma));
    comma &= comma - 1;
    return i;
  };
  const std::size_t at0 = take();
  const std::size_t at1 = take();
  const std::size_t at2 = take();
  const std::size_t at3 = take();
  const std::size_t document_size = at2 - at1 - 1;
  const std::size_t b = at2 + 1;  // the birthdate
  const std::size_t number_size = size - at3 - 1;
  // Five fields: four commas, not more; names not empty; 1..10 digits of
  // document, a birthdate of 10 bytes, 1..4 bytes of number.
  unsigned fail = (c.bad | comma) != 0;
  fail |= at0 == 0;
  fail |= at1 - at0 < 2;
  fail |= document_size - 1 >= kMaxDocumentDigits;
  fail |= at3 - b != 10;
  fail |= number_size - 1 >= 4;
  if (fail != 0) return false;
  // Every position is inside the row from here on. Names: no formula start,
  // no byte >= 0x80 after them. Past the names, digits exactly where the
  // fields put them: everything but the last two commas and the dashes of
  // YYYY-MM-DD, which must be dashes. Number: no leading zero.
  fail |= IsFormulaStart(bytes[0]);
  fail |= IsFormulaStart(bytes[at0 + 1]);
  fail |= (c.high >> at1) != 0;
  const RowMask fields = LowBits(size) & ~LowBits(at1 + 1);
  const RowMask separators =
      (RowMask{1} << at2) | (RowMask{1} << at3) | (RowMask{1} << (b + 4)) | (RowMask{1} << (b + 7));
  fail |= (c.digit & fields) != (fields & ~separators);
  fail |= bytes[b + 4] != '-';
  fail |= bytes[b + 7] != '-';
  fail |= (number_size > 1) & (bytes[at3 + 1] == '0');
  if (fail != 0) return false;
  // Every byte >= 0x80 (all in the names now) is an 0xC3 followed by a
  // continuation byte: U+00C0..U+00FF, no control or format character among
  // them. At most 64 bytes: within 100 characters. With no high byte both
  // sides are empty.
  if (!c.has_utf8 && c.high != 0) utf8(c);
  fail |= (c.lead << 1) != c.cont;
  fail |= (c.lead | c.cont) != c.high;
  // A real date from 1900 to today, compared as one number.
  const int year = ReadYear(bytes + b);
  auto digit = [bytes](std::size_t i) { return bytes[i] - '0'; };
  const int month = digit(b + 5) * 10 + digit(b + 6);
  const int day = digit(b + 8) * 10 + digit(b + 9);
  auto packed = [](int yy, int m, int d) { return (yy << 9) | (m << 5) | d; };
  fail |= year < kMinBirthYear;
  fail |= static_cast<unsigned>(day - 1) >= kMaxDay[month & 15];
  fail |= month > 12;
  fail |= packed(year, month, day) > packed(today.year, today.month, today.day);
  if (fail != 0) return false;
  if (month == 2 && day == 29 && DaysIn(year, 2) != 29) return false;
  const std::uint32_t number = ReadNumber(bytes + size, number_size);
  bet.first_name = std::string_view(bytes, at0);
  bet.last_name = std::string_view(bytes + at0 + 1, at1 - at0 - 1);
  bet.document = std::string_view(bytes + at1 + 1, document_size);
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

// The size of the row of a line whose LF is at `lf`: the line without its
// LF or CRLF.
inline std::size_t RowSizeBefore(const char* bytes, std::size_t lf) {
  return lf - (lf > 0 && bytes[lf - 1] == '\r');
}

#if defined(__x86_64__) && defined(__GNUC__)
// The AVX-512BW kernel: the row in one 64-byte load, each class of byte one
// compare straight into a mask register, bits past the row's end cleared by
// the compare's mask. The load may take bytes past the row's end, never past
// the end of the row's page: bytes in the last 64 of a page are read with a
// masked load, whose bytes past the row's end are neither read nor faulted
// on (the masked load is slower on some CPUs, hence not always). Reading a
// neighbour's bytes is no fault, but AddressSanitizer would say so: it does
// not look at these functions.
#define LOTTERY_AVX512 __attribute__((target("avx512f,avx512bw,bmi,bmi2"), no_sanitize_address))

// The 64 bytes at `bytes`, of which the first `reach` (<= 64) are the
// caller's; the others are zero or whatever follows them in the page.
LOTTERY_AVX512 inline __m512i Load64(const char* bytes, std::size_t reach) {
  constexpr std::uintptr_t kPage = 4096;  // the smallest page x86-64 has
  if ((reinterpret_cast<std::uintptr_t>(bytes) & (kPage - 1)) > kPage - 64) {
    return _mm512_maskz_loadu_epi8(_bzhi_u64(~std::uint64_t{0}, static_cast<unsigned>(reach)),
                                   bytes);
  }
  return _mm512_loadu_si512(bytes);
}

// The classes of the row held by the bytes of `v` in `valid`.
LOTTERY_AVX512 inline RowClasses ClassesAvx512(__m512i v, __mmask64 valid) {
  RowClasses c;
  c.comma = _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8(','));
  c.bad = _mm512_mask_cmplt_epu8_mask(valid, v, _mm512_set1_epi8(0x20)) |
          _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8(0x7f)) |
          _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8('"'));
  c.high = _mm512_movepi8_mask(v) & valid;
  c.digit = _mm512_mask_cmplt_epu8_mask(valid, _mm512_sub_epi8(v, _mm512_set1_epi8('0')),
                                        _mm512_set1_epi8(10));
  c.lead = _mm512_mask_cmpeq_epi8_mask(valid, v, _mm512_set1_epi8(static_cast<char>(0xC3)));
  // Signed: 0x80..0xBF are the bytes below 0xC0 (-64) and at least -128.
  c.cont = _mm512_mask_cmplt_epi8_mask(valid, v, _mm512_set1_epi8(static_cast<char>(0xC0)));
  c.has_utf8 = true;
  return c;
}

LOTTERY_AVX512 bool ParseCommonRowAvx512(std::string_view row, const Date& today, BetView& bet) {
  const std::size_t size = row.size();
  if (size - 16 > 48) return false;  // 16..64 bytes; no valid row is shorter than 18
  const __m512i v = Load64(row.data(), size);
  const __mmask64 valid = _bzhi_u64(~std::uint64_t{0}, static_cast<unsigned>(size));
  return FinishCommonRow(row, today, bet, ClassesAvx512(v, valid), [](RowClasses&) {});
}

// The line and its row from the same load: the line end is a bit of one
// more compare.
LOTTERY_AVX512 std::size_t ParseCommonLineAvx512(std::string_view text, const Date& today,
                                                 BetView& bet, std::size_t& line_size) {
  if (text.size() <= 16) return 0;  // no row of 16 bytes and its line end
  const std::size_t reach = std::min<std::size_t>(text.size(), 64);
  const char* bytes = text.data();
  const __m512i v = Load64(bytes, reach);
  const RowMask lf = _mm512_mask_cmpeq_epi8_mask(
      _bzhi_u64(~std::uint64_t{0}, static_cast<unsigned>(reach)), v, _mm512_set1_epi8('\n'));
  if (lf == 0) return 0;
  const std::size_t end = static_cast<std::size_t>(std::countr_zero(lf));
  const std::size_t size = RowSizeBefore(bytes, end);
  if (size < 16) return 0;
  const __mmask64 valid = _bzhi_u64(~std::uint64_t{0}, static_cast<unsigned>(size));
  if (!FinishCommonRow(std::string_view(bytes, size), today, bet, ClassesAvx512(v, valid),
                       [](RowClasses&) {})) {
    return 0;
  }
  line_size = end + 1;
  return size;
}
#undef LOTTERY_AVX512

bool CpuRunsAvx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
}
// Asked once, when the program starts.
const bool kCpuHasAvx512 = CpuRunsAvx512();
#endif

using detail::CommonLineParser;
using detail::CommonRowParser;

bool ParseCommonRowNone(std::string_view, const Date&, BetView&) { return false; }

// The line's end found apart, then the row kernel: for kernels without a
// line kernel of their own.
template <CommonRowParser Parser>
std::size_t ParseCommonLineApart(std::string_view text, const Date& today, BetView& bet,
                                 std::size_t& line_size) {
  if (text.size() <= 16) return 0;  // no row of 16 bytes and its line end
  const void* lf = std::memchr(text.data(), '\n', std::min<std::size_t>(text.size(), 64));
  if (lf == nullptr) return 0;
  const std::size_t end = static_cast<std::size_t>(static_cast<const char*>(lf) - text.data());
  const std::size_t size = RowSizeBefore(text.data(), end);
  if (!Parser(text.substr(0, size), today, bet)) return 0;
  line_size = end + 1;
  return size;
}

// A kernel's two entry points: a row, and a dataset line with its row.
struct CommonParsers {
  CommonRowParser row = nullptr;
  CommonLineParser line = nullptr;
};

// Both null when this build or this CPU does not run `kernel`.
CommonParsers ParsersOf(RowKernel kernel) {
  switch (kernel) {
#if defined(__SSE2__)
    case RowKernel::kSse2: return {ParseCommonRowSse2, ParseCommonLineApart<ParseCommonRowSse2>};
#endif
#if defined(__x86_64__) && defined(__GNUC__)
    case RowKernel::kAvx512:
      if (kCpuHasAvx512) return {ParseCommonRowAvx512, ParseCommonLineAvx512};
      return {};
#endif
    case RowKernel::kNone: return {ParseCommonRowNone, ParseCommonLineApart<ParseCommonRowNone>};
    default: return {};
  }
}

// The widest kernel this CPU runs.
CommonParsers BestParsers() {
  for (RowKernel k : {RowKernel::kAvx512, RowKernel::kSse2}) {
    if (CommonParsers p = ParsersOf(k); p.row != nullptr) return p;
  }
  return ParsersOf(RowKernel::kNone);
}

}  // namespace

// Chosen once, when the program starts (before main, so before any fork or
// thread): a plain load per row, no guard.
const CommonRowParser detail::kBestCommonRowParser = BestParsers().row;
const CommonLineParser detail::kBestCommonLineParser = BestParsers().line;

bool HasRowKernel(RowKernel kernel) { return ParsersOf(kernel).row != nullptr; }

std::optional<std::string> ParseBetRowWith(RowKernel kernel, std::string_view row,
                                           const Date& today, BetView& bet, std::string& scratch) {
  assert(HasRowKernel(kernel));
  const CommonRowParser parser = ParsersOf(kernel).row;
  if (parser != nullptr && parser(row, today, bet)) return std::nullopt;
  return CheckBetRow(row, today, bet, scratch);
}

std::size_t ParseCommonLineWith(RowKernel kernel, std::string_view text, const Date& today,
                                BetView& bet, std::size_t& line_size) {
  assert(HasRowKernel(kernel));
  return ParsersOf(kernel).line(text, today, bet, line_size);
}

}  // namespace lottery
