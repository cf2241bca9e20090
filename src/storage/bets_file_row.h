// The bets-file row (docs/STORAGE.md): the exercise's 6-column store_bets
// format, agency,first_name,last_name,document,birthdate,number, in the
// project's CSV dialect (common/csv.h) with CRLF line ends. Its writer, its
// reader and where a row ends are all here; BetStore appends rows, start-up
// recovery cuts a torn one, the draw's scanner (winner_scan.h) reads them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/csv.h"
#include "common/status.h"
#include "wire/bet.h"

namespace lottery {

// Appends one row: agency,first_name,last_name,document,birthdate,number\r\n
void AppendBetRow(std::string& out, const BetView& bet);

// "<agency>,": the column a worker puts before every row of its agency.
std::string AgencyColumn(std::uint32_t agency);

// Appends one row from its agency column and a bet row (wire/bet_row.h) that
// ParseBetRow accepted: the bytes as they came, with no decode or re-encode.
// The result is byte for byte what AppendBetRow writes for that bet.
void AppendStoredRow(std::string& out, std::string_view agency_column, std::string_view bet_row);

// Turns a 6-column record into a bet view over its fields (agency and number
// parsed). Fails on a wrong column count, an agency that is not a positive
// integer, or a number that is not 0..9999.
Result<BetView> StoredRecordToBet(const CsvRecord& record);

// Where the last complete row of the file behind `fd` (of `size` bytes)
// ends: just past its last LF, or 0. Bytes after it are a row torn by a
// crash in the middle of a write.
Result<std::uint64_t> LastRowEnd(int fd, std::uint64_t size);

}  // namespace lottery
