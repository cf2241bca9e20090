// The agency's dataset row: a 5-column CSV record (first_name, last_name,
// document, birthdate, number), LF or CRLF line ends, an optional UTF-8 BOM,
// read with the project's CSV dialect (common/csv.h).
#pragma once

#include <cstdint>
#include <string>

#include "common/csv.h"
#include "common/status.h"
#include "common/unique_fd.h"
#include "wire/bet.h"

namespace lottery {

// An opened dataset: its descriptor and its size (0 when it is not a
// regular file, a pipe for instance).
struct DatasetFile {
  UniqueFd fd;
  std::uint64_t size = 0;
  // A pipe or a device: a read may wait for whatever writes it.
  bool streamed = false;
};

// Opens the dataset for reading: a regular file, a pipe or a character
// device. Fails with the reason (missing, unreadable, a directory, ...).
Result<DatasetFile> OpenDataset(const std::string& path);

// Turns a dataset record into a bet view over the record's fields. Returns
// the reason when the record has the wrong number of columns or the number
// is not 0..9999 digits; it does not apply ValidateBet.
Result<BetView> DatasetRecordToBet(const CsvRecord& record, std::uint32_t agency);

}  // namespace lottery
