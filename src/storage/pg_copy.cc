#include "storage/pg_copy.h"

#include <cassert>
#include <cstring>

#include "common/coding.h"

namespace lottery {
namespace {

// PostgreSQL's binary COPY signature: "PGCOPY\n", 0xff, "\r\n", NUL.
constexpr std::string_view kSignature("PGCOPY\n\xff\r\n\0", 11);
constexpr int kColumns = 8;

bool AllDigits(std::string_view text) {
  if (text.empty()) return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Takes the field at the start of `row` up to its comma (consumed) or the
// row's end, as it is: the columns a bets-file row never quotes.
std::string_view TakePlainField(std::string_view& row) {
  const std::size_t comma = row.find(',');
  const std::string_view field = row.substr(0, comma);
  row.remove_prefix(comma == std::string_view::npos ? row.size() : comma + 1);
  return field;
}

// Takes the field at the start of `row` up to its comma (consumed) or the
// row's end. A quoted field is unquoted into `scratch`. False when a quoted
// field does not close, or a field runs on after its closing quote.
bool TakeField(std::string_view& row, std::string_view& field, std::string& scratch) {
  if (row.empty() || row.front() != '"') {
    field = TakePlainField(row);
    return true;
  }
  scratch.clear();
  std::size_t i = 1;
  while (true) {
    const std::size_t quote = row.find('"', i);
    if (quote == std::string_view::npos) return false;
    scratch.append(row.substr(i, quote - i));
    if (quote + 1 < row.size() && row[quote + 1] == '"') {
      scratch.push_back('"');
      i = quote + 2;
      continue;
    }
    row.remove_prefix(quote + 1);
    break;
  }
  field = scratch;
  if (row.empty()) return true;
  if (row.front() != ',') return false;
  row.remove_prefix(1);
  return true;
}

bool ParseDigits(std::string_view text, std::uint32_t& value) {
  if (!AllDigits(text) || text.size() > 9) return false;
  value = 0;
  for (char c : text) value = value * 10 + static_cast<std::uint32_t>(c - '0');
  return true;
}

// YYYY-MM-DD as PostgreSQL's days.
bool ParseBirthdate(std::string_view text, std::int32_t& days) {
  std::uint32_t year = 0, month = 0, day = 0;
  if (text.size() != 10 || text[4] != '-' || text[7] != '-' ||
      !ParseDigits(text.substr(0, 4), year) || !ParseDigits(text.substr(5, 2), month) ||
      !ParseDigits(text.substr(8, 2), day) || month < 1 || month > 12 || day < 1 || day > 31) {
    return false;
  }
  days = PgDateDays(static_cast<int>(year), static_cast<int>(month), static_cast<int>(day));
  return true;
}

}  // namespace

void AppendPgCopyHeader(std::string& out) {
  out.append(kSignature);
  PutFixedBe(out, 0, 4);  // flags: no OIDs
  PutFixedBe(out, 0, 4);  // header extension length
}

void AppendPgCopyTrailer(std::string& out) { PutFixedBe(out, 0xffff, 2); }

std::int32_t PgDateDays(int year, int month, int day) {
  // Days from 1970-01-01 (H. Hinnant's days_from_civil), then from 2000.
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  constexpr int kDays1970To2000 = 10957;
  return era * 146097 + doe - 719468 - kDays1970To2000;
}

bool SplitBetsFileRow(std::string_view row, PgBetColumns& columns, std::string& first_scratch,
                      std::string& last_scratch) {
  if (row.ends_with("\r\n")) row.remove_suffix(2);
  const std::size_t agency_end = row.find(',');
  if (agency_end == std::string_view::npos || !AllDigits(row.substr(0, agency_end))) return false;
  row.remove_prefix(agency_end + 1);
  if (!TakeField(row, columns.first_name, first_scratch) ||
      !TakeField(row, columns.last_name, last_scratch)) {
    return false;
  }
  columns.document = TakePlainField(row);
  const std::string_view birthdate = TakePlainField(row);
  const std::string_view number = row;
  return AllDigits(columns.document) && columns.document.size() <= 10 &&
         ParseBirthdate(birthdate, columns.birth_days) && number.size() <= 4 &&
         ParseDigits(number, columns.number);
}

// The tuple's bytes before its text fields and after them.
constexpr std::size_t kTupleFixedBytes =
    2 + (4 + 8) + (4 + 4) + (4 + 8) + 3 * 4 + (4 + 4) + (4 + 4);

void AppendPgCopyTuple(std::string& out, std::uint64_t round, std::uint32_t agency,
                       std::uint64_t position, const PgBetColumns& columns) {
  const std::size_t size = kTupleFixedBytes + columns.first_name.size() + columns.last_name.size() +
                           columns.document.size();
  // Written in place, sized once: a byte at a time through push_back was
  // most of a committer's own CPU.
  out.resize_and_overwrite(out.size() + size, [&](char* data, std::size_t n) {
    char* p = data + n - size;
    auto fixed = [&p](std::uint64_t value, int bytes) {
      EncodeFixedBe(p, value, bytes);
      p += bytes;
    };
    auto text = [&](std::string_view field) {
      fixed(field.size(), 4);
      std::memcpy(p, field.data(), field.size());
      p += field.size();
    };
    fixed(kColumns, 2);
    fixed(8, 4);
    fixed(round, 8);
    fixed(4, 4);
    fixed(agency, 4);
    fixed(8, 4);
    fixed(position, 8);
    text(columns.first_name);
    text(columns.last_name);
    text(columns.document);
    fixed(4, 4);
    fixed(static_cast<std::uint32_t>(columns.birth_days), 4);
    fixed(4, 4);
    fixed(columns.number, 4);
    assert(p == data + n);
    return n;
  });
}

}  // namespace lottery
