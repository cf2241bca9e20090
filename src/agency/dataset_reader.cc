#include "agency/dataset_reader.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/log.h"

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
    return Fail(ErrorKind::kInvalidInput,
                fmt::format("expected 5 columns, got {}", record.fields.size()));
  }
  auto number = ParseBetNumber(record.fields[4]);
  if (!number) return Fail(ErrorKind::kInvalidInput, "number: not an integer 0..9999");
  return BetView{agency,           record.fields[0], record.fields[1],
                 record.fields[2], record.fields[3], *number};
}

RowRead DatasetRows::NextSlowly(std::string_view& row) {
  // A line that is already a valid bet row goes as it is; any other line is
  // read again as a record, which says why it is skipped or is re-spelled.
  if (auto line = reader_.PeekLine(); line && !ParseBetRow(*line, today_, bet_, scratch_)) {
    reader_.TakePeekedLine();
    row = *line;
    return RowRead::kRow;
  }
  auto next = reader_.Next();
  if (!next) {
    error_ = next.error();
    return RowRead::kError;
  }
  if (!next->has_value()) return RowRead::kEnd;
  const CsvRecord& record = ***next;
  auto bet = DatasetRecordToBet(record, agency_);
  std::optional<std::string> reason = record.error ? record.error
                                      : !bet       ? bet.error().message
                                                   : ValidateBet(*bet, today_);
  if (reason) {
    ++lines_skipped_;
    Log(LogLevel::kWarning, "dataset_line", Outcome::kFail, "client_id: {} | line: {} | error: {}",
        agency_, record.line, *reason);
    return RowRead::kSkipped;
  }
  respelled_.clear();
  AppendBetRowText(respelled_, *bet);
  row = respelled_;
  return RowRead::kRow;
}

}  // namespace lottery
