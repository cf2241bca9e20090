#include "storage/batch_journal.h"

#include <cassert>

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/crc32.h"
#include "common/file_io.h"

namespace lottery {
namespace {

constexpr char kMagic[4] = {'L', 'B', 'J', '1'};

}  // namespace

void EncodeJournalRecord(std::string& out, const JournalRecord& r) {
  const std::size_t at = out.size();
  out.append(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(r.kind));
  out.append(3, '\0');
  PutFixedLe(out, r.agency, 4);
  PutFixedLe(out, r.count, 4);
  PutFixedLe(out, r.seq, 8);
  PutFixedLe(out, r.end, 8);
  PutFixedLe(out, Crc32(out.data() + at, 32), 4);
  out.append(4, '\0');
}

Result<JournalRecord> DecodeJournalRecord(const char* p) {
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0)
    return Fail(ErrorKind::kCorruptData, "journal record: bad magic");
  if (GetFixedLe(p + 32, 4) != Crc32(p, 32))
    return Fail(ErrorKind::kCorruptData, "journal record: bad checksum");
  auto kind = static_cast<JournalKind>(static_cast<unsigned char>(p[4]));
  if (kind < JournalKind::kRoundStart || kind > JournalKind::kBettingClosed) {
    return Fail(ErrorKind::kCorruptData, "journal record: unknown kind");
  }
  return JournalRecord{kind, static_cast<std::uint32_t>(GetFixedLe(p + 8, 4)),
                       static_cast<std::uint32_t>(GetFixedLe(p + 12, 4)), GetFixedLe(p + 16, 8),
                       GetFixedLe(p + 24, 8)};
}

Status AppendJournalRecord([[maybe_unused]] const FileLock& flocked, int journal_fd,
                           const JournalRecord& record) {
  assert(flocked.ok());
  auto size = FileSize(journal_fd);
  if (!size) return std::unexpected(size.error());
  std::uint64_t at = *size - *size % kJournalRecordSize;
  if (at != *size && ::ftruncate(journal_fd, static_cast<off_t>(at)) != 0) {
    return FailErrno("ftruncate journal");
  }
  std::string bytes;
  EncodeJournalRecord(bytes, record);
  if (Status w = PwriteAll(journal_fd, bytes, at); !w) {
    (void)::ftruncate(journal_fd, static_cast<off_t>(at));
    return w;
  }
  return Ok();
}

bool JournalEndsWith(int journal_fd, std::uint32_t agency, std::uint64_t seq) {
  auto size = FileSize(journal_fd);
  if (!size || *size < kJournalRecordSize) return false;
  std::uint64_t at = *size - *size % kJournalRecordSize - kJournalRecordSize;
  char bytes[kJournalRecordSize];
  if (!PreadAll(journal_fd, bytes, sizeof bytes, at, "read journal")) return false;
  auto record = DecodeJournalRecord(bytes);
  return record && record->kind == JournalKind::kBatch && record->agency == agency &&
         record->seq == seq;
}

}  // namespace lottery
