#include "agency/dataset_reader.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

namespace lottery {

Result<DatasetFile> OpenDataset(const std::string& path) {
  DatasetFile out;
  out.fd.Reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  struct stat st {};
  if (!out.fd || ::fstat(out.fd.get(), &st) != 0) return Fail(ErrorKind::kIo, std::strerror(errno));
  if (S_ISDIR(st.st_mode)) return Fail(ErrorKind::kIo, "is a directory, not a CSV file");
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) && !S_ISCHR(st.st_mode)) {
    return Fail(ErrorKind::kIo, "is not a regular file");
  }
  out.size = S_ISREG(st.st_mode) ? static_cast<std::uint64_t>(st.st_size) : 0;
  out.streamed = !S_ISREG(st.st_mode);
  return out;
}

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
