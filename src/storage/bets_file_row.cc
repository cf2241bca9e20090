#include "storage/bets_file_row.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>

#include <fmt/format.h>

#include "common/file_io.h"

namespace lottery {
namespace {

char* PutUnsigned(char* p, std::uint32_t v) { return std::to_chars(p, p + 10, v).ptr; }

}  // namespace

void AppendBetRow(std::string& out, const BetView& bet) {
  // Hot path of every stored bet: one resize for the worst case, then plain
  // pointer writes (no fmt, no append per field).
  const std::size_t worst = 10 + 1 + 2 * bet.first_name.size() + 3 + 2 * bet.last_name.size() + 3 +
                            2 * bet.document.size() + 3 + 2 * bet.birthdate.size() + 3 + 10 + 2;
  const std::size_t start = out.size();
  // The lambda returns the real end (libstdc++ 12 passes it the capacity,
  // not start + worst, so that argument is not used).
  out.resize_and_overwrite(start + worst, [&](char* base, std::size_t) {
    char* p = base + start;
    p = PutUnsigned(p, bet.agency);
    *p++ = ',';
    p = PutCsvField(p, bet.first_name);
    *p++ = ',';
    p = PutCsvField(p, bet.last_name);
    *p++ = ',';
    p = PutCsvField(p, bet.document);
    *p++ = ',';
    p = PutCsvField(p, bet.birthdate);
    *p++ = ',';
    p = PutUnsigned(p, bet.number);
    *p++ = '\r';
    *p++ = '\n';
    return static_cast<std::size_t>(p - base);
  });
}

Result<BetView> StoredRecordToBet(const CsvRecord& record) {
  if (record.fields.size() != 6) {
    return Fail(ErrorKind::kCorruptData, fmt::format("expected 6 columns, got {}", record.fields.size()));
  }
  std::string_view a = record.fields[0];
  std::uint32_t agency = 0;
  auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), agency);
  if (a.empty() || ec != std::errc() || end != a.data() + a.size() || agency == 0) {
    return Fail(ErrorKind::kCorruptData, "agency: not a positive integer");
  }
  auto number = ParseBetNumber(record.fields[5]);
  if (!number) return Fail(ErrorKind::kCorruptData, "number: not an integer 0..9999");
  return BetView{agency, record.fields[1], record.fields[2], record.fields[3], record.fields[4],
                 *number};
}


Result<std::uint64_t> LastRowEnd(int fd, std::uint64_t size) {
  // Walk back from the end to the last line end, a block at a time.
  std::uint64_t pos = size;
  char block[4096];
  while (pos > 0) {
    std::uint64_t from = pos > sizeof block ? pos - sizeof block : 0;
    std::size_t want = static_cast<std::size_t>(pos - from);
    if (Status read = PreadAll(fd, block, want, from); !read) return std::unexpected(read.error());
    std::string_view view(block, want);
    if (auto nl = view.rfind('\n'); nl != std::string_view::npos) return from + nl + 1;
    pos = from;
  }
  return 0;
}

}  // namespace lottery
