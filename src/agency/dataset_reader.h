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
#include "wire/bet_row.h"

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

// What DatasetRows::Next found.
enum class RowRead { kRow, kSkipped, kEnd, kError };

// The bets of a dataset in file order, each as the bet row the wire carries
// (wire/bet_row.h). A line that already is such a row is handed out where
// it lies in the read buffer: the common case, whose end and bytes one pass
// finds and checks (ParseCommonLine). Any other line is read as a CSV
// record: re-spelled when it holds a valid bet, else skipped with a warning
// that names the line and why. Does not own the descriptor, which must
// outlive it.
class DatasetRows {
 public:
  DatasetRows(int fd, std::uint32_t agency, const Date& today)
      : reader_(fd), agency_(agency), today_(today) {}

  // kRow: `row` is the next bet's row, valid until the next call. kSkipped:
  // a line that holds no valid bet was skipped (and logged); call again.
  // kEnd: the dataset is over. kError: reading failed, error() says why.
  // Inline: an agency calls it for every bet.
  RowRead Next(std::string_view& row) {
    const std::string_view buffered = reader_.Buffered();
    std::size_t line_size = 0;
    if (const std::size_t size = ParseCommonLine(buffered, today_, bet_, line_size)) {
      reader_.TakeLine(line_size);
      row = buffered.substr(0, size);
      return RowRead::kRow;
    }
    return NextSlowly(row);
  }

  // Whether the next Next() may read from the descriptor (no whole line is
  // buffered), and so wait for a pipe's writer.
  bool MayRead() { return !reader_.PeekLine(); }

  const Error& error() const { return error_; }
  std::uint64_t lines_skipped() const { return lines_skipped_; }

 private:
  // Next() for a line the one pass does not take.
  RowRead NextSlowly(std::string_view& row);

  CsvReader reader_;
  const std::uint32_t agency_;
  const Date today_;
  BetView bet_;            // the fields of the row last checked
  std::string scratch_;    // its unquoted names
  std::string respelled_;  // the row of a line that was not one
  Error error_;
  std::uint64_t lines_skipped_ = 0;
};

}  // namespace lottery
