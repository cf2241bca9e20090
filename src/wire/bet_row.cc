#include "wire/bet_row.h"

#include <charconv>
#include <cstring>

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
  constexpr const char* kFieldCount =
      "row: not 5 fields (first_name,last_name,document,birthdate,number)";
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

}  // namespace lottery
