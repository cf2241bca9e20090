// The agency's dataset row: a 5-column CSV record (first_name, last_name,
// document, birthdate, number), LF or CRLF line ends, an optional UTF-8 BOM,
// read with the project's CSV dialect (common/csv.h).
#pragma once

#include <cstdint>

#include "common/csv.h"
#include "common/status.h"
#include "wire/bet.h"

namespace lottery {

// Turns a dataset record into a bet view over the record's fields. Returns
// the reason when the record has the wrong number of columns or the number
// is not 0..9999 digits; it does not apply ValidateBet.
Result<BetView> DatasetRecordToBet(const CsvRecord& record, std::uint32_t agency);

}  // namespace lottery
