#include "storage/bets_file_row.h"

#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include <fmt/format.h>

#include "common/file_io.h"
#include "wire/bet_row.h"

namespace lottery {
void AppendBetRow(std::string& out, const BetView& bet) {
  // The agency column, then the bet row the agency sends (wire/bet_row.h):
  // one spelling, whichever side writes it.
  const std::size_t start = out.size();
  const std::size_t size = start + 10 + 1 + BetRowSize(bet) + 2;
  // The lambda returns the real end (libstdc++ 12 passes it the capacity,
  // not the requested size, so that argument is not used).
  out.resize_and_overwrite(size, [&](char* base, std::size_t) {
    char* p = base + start;
    p = std::to_chars(p, p + 10, bet.agency).ptr;
    *p++ = ',';
    p = PutBetRow(p, bet);
    *p++ = '\r';
    *p++ = '\n';
    return static_cast<std::size_t>(p - base);
  });
}

std::string AgencyColumn(std::uint32_t agency) { return fmt::format("{},", agency); }

void AppendStoredRow(std::string& out, std::string_view agency_column, std::string_view bet_row) {
  const std::size_t start = out.size();
  const std::size_t size = start + agency_column.size() + bet_row.size() + 2;
  out.resize_and_overwrite(size, [&](char* base, std::size_t) {
    char* p = base + start;
    std::memcpy(p, agency_column.data(), agency_column.size());
    p += agency_column.size();
    std::memcpy(p, bet_row.data(), bet_row.size());
    p += bet_row.size();
    *p++ = '\r';
    *p = '\n';
    return size;
  });
}

Result<BetView> StoredRecordToBet(const CsvRecord& record) {
  if (record.fields.size() != 6) {
    return Fail(ErrorKind::kCorruptData,
                fmt::format("expected 6 columns, got {}", record.fields.size()));
  }
  std::string_view a = record.fields[0];
  std::uint32_t agency = 0;
  auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), agency);
  if (a.empty() || ec != std::errc() || end != a.data() + a.size() || agency == 0) {
    return Fail(ErrorKind::kCorruptData, "agency: not a positive integer");
  }
  auto number = ParseBetNumber(record.fields[5]);
  if (!number) return Fail(ErrorKind::kCorruptData, "number: not an integer 0..9999");
  return BetView{agency,           record.fields[1], record.fields[2],
                 record.fields[3], record.fields[4], *number};
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
