// The bets rows as PostgreSQL's binary COPY takes them (COPY bets ... FROM
// STDIN WITH (FORMAT binary); docs/STORAGE.md, "Storing batches"): the
// committer turns each bets-file row (storage/bets_file_row.h) into one
// tuple, so that the database parses no text. Contract: a row that is not a
// bets-file row of this project's dialect is refused, never stored in part.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lottery {

// The 19 bytes before the first tuple: the signature "PGCOPY\n\377\r\n\0",
// flags 0 (int32) and a header extension of 0 bytes (int32).
void AppendPgCopyHeader(std::string& out);
// The 2 bytes after the last tuple: a field count of -1 (int16).
void AppendPgCopyTrailer(std::string& out);

// The columns of one bets-file row. The names point into the row, or into
// the scratch strings when the row quotes them.
struct PgBetColumns {
  std::string_view first_name;
  std::string_view last_name;
  std::string_view document;    // 1..10 ASCII digits
  std::int32_t birth_days = 0;  // days since 2000-01-01, PostgreSQL's date
  std::uint32_t number = 0;
};

// Splits one bets-file row, `agency,first_name,last_name,document,
// birthdate,number` with or without its CRLF, into `columns` (the agency
// column is skipped: the caller knows it). Returns false when the row does
// not have that shape: a name unquoted wrongly, a document or number that
// is not digits, a birthdate that is not YYYY-MM-DD.
bool SplitBetsFileRow(std::string_view row, PgBetColumns& columns, std::string& first_scratch,
                      std::string& last_scratch);

// Appends the tuple of columns (round, agency, position, first_name,
// last_name, document, birthdate, number): a field count of 8 (int16), then
// each field as its length (int32) and its bytes, integers big-endian:
// bigint 8 bytes, int and date 4, text as it is.
void AppendPgCopyTuple(std::string& out, std::uint64_t round, std::uint32_t agency,
                       std::uint64_t position, const PgBetColumns& columns);

// Days from 2000-01-01 to year-month-day (proleptic Gregorian; negative
// before 2000): PostgreSQL's binary date.
std::int32_t PgDateDays(int year, int month, int day);

}  // namespace lottery
