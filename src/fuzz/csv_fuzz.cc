// libFuzzer target: the CSV reader on an agency dataset and on a bets file,
// and both record-to-bet conversions.
#include <cstddef>
#include <cstdint>

#include "agency/dataset_reader.h"
#include "common/csv.h"
#include "fuzz/fuzz_util.h"
#include "storage/bets_file_row.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  UniqueFd fd = fuzz::MemFdWith(data, size);
  if (!fd) return 0;
  CsvReader reader(fd.get(), 4096);
  for (int records = 0; records < 100000; ++records) {
    auto next = reader.Next();
    if (!next || !next->has_value()) break;
    const CsvRecord& record = ***next;
    (void)DatasetRecordToBet(record, 1);
    (void)StoredRecordToBet(record);
  }
  return 0;
}
