#include "agency/dataset_reader.h"

#include <fmt/format.h>

namespace lottery {

Result<BetView> DatasetRecordToBet(const CsvRecord& record, std::uint32_t agency) {
  if (record.fields.size() != 5) {
    return Fail(ErrorKind::kInvalidInput, fmt::format("expected 5 columns, got {}", record.fields.size()));
  }
  auto number = ParseBetNumber(record.fields[4]);
  if (!number) return Fail(ErrorKind::kInvalidInput, "number: not an integer 0..9999");
  return BetView{agency, record.fields[0], record.fields[1], record.fields[2], record.fields[3],
                 *number};
}

}  // namespace lottery
