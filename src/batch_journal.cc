#include "batch_journal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "file_io.h"

namespace lottery {
namespace {

constexpr char kMagic[4] = {'L', 'B', 'J', '1'};

void PutLe(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

std::uint64_t GetLe(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

Status ReadAt(int fd, char* buf, std::size_t size, std::uint64_t offset) {
  while (size > 0) {
    ssize_t n = ::pread(fd, buf, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return n < 0 ? FailErrno("read journal") : Fail("read journal: short read");
    buf += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Ok();
}

Status Truncate(int fd, std::uint64_t size, const char* what) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return FailErrno(fmt::format("ftruncate {}", what));
  return Ok();
}

}  // namespace

std::uint32_t Crc32(const char* data, std::size_t size) {
  std::uint32_t crc = 0xffffffffu;
  for (std::size_t i = 0; i < size; ++i) {
    crc ^= static_cast<unsigned char>(data[i]);
    for (int k = 0; k < 8; ++k) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

void EncodeJournalRecord(std::string& out, const JournalRecord& r) {
  const std::size_t at = out.size();
  out.append(kMagic, sizeof kMagic);
  out.push_back(static_cast<char>(r.kind));
  out.append(3, '\0');
  PutLe(out, r.agency, 4);
  PutLe(out, r.count, 4);
  PutLe(out, r.seq, 8);
  PutLe(out, r.end, 8);
  PutLe(out, Crc32(out.data() + at, 32), 4);
  out.append(4, '\0');
}

Result<JournalRecord> DecodeJournalRecord(const char* p) {
  if (std::memcmp(p, kMagic, sizeof kMagic) != 0) return Fail("journal record: bad magic");
  if (GetLe(p + 32, 4) != Crc32(p, 32)) return Fail("journal record: bad checksum");
  auto kind = static_cast<JournalKind>(static_cast<unsigned char>(p[4]));
  if (kind != JournalKind::kRoundStart && kind != JournalKind::kBatch &&
      kind != JournalKind::kRoundComplete) {
    return Fail("journal record: unknown kind");
  }
  return JournalRecord{kind, static_cast<std::uint32_t>(GetLe(p + 8, 4)),
                       static_cast<std::uint32_t>(GetLe(p + 12, 4)), GetLe(p + 16, 8),
                       GetLe(p + 24, 8)};
}

Result<RoundRecovery> RecoverRound(int data_fd, int journal_fd, std::uint32_t agencies) {
  auto journal_size = FileSize(journal_fd);
  if (!journal_size) return std::unexpected(journal_size.error());
  auto data_size = FileSize(data_fd);
  if (!data_size) return std::unexpected(data_size.error());

  // The whole records up to the first that does not decode (a torn tail).
  std::vector<JournalRecord> records;
  std::string bytes(*journal_size, '\0');
  if (!bytes.empty()) {
    if (Status read = ReadAt(journal_fd, bytes.data(), bytes.size(), 0); !read) {
      return std::unexpected(read.error());
    }
  }
  for (std::size_t at = 0; at + kJournalRecordSize <= bytes.size(); at += kJournalRecordSize) {
    auto record = DecodeJournalRecord(bytes.data() + at);
    if (!record) break;
    records.push_back(*record);
  }

  RoundRecovery out;
  out.agencies.resize(agencies + 1);
  const bool unfinished = !records.empty() && records.front().kind == JournalKind::kRoundStart &&
                          records.back().kind != JournalKind::kRoundComplete;
  if (!unfinished) {
    // A new round over whatever the bets file holds.
    std::string start;
    EncodeJournalRecord(start, JournalRecord{JournalKind::kRoundStart, 0, 0, 0, *data_size});
    if (Status t = Truncate(journal_fd, 0, "journal"); !t) return std::unexpected(t.error());
    if (Status w = PwriteAll(journal_fd, start, 0, "write journal"); !w) return std::unexpected(w.error());
    if (::fdatasync(journal_fd) != 0) return FailErrno("fdatasync journal");
    return out;
  }

  for (const JournalRecord& r : records) {
    if (r.kind == JournalKind::kBatch && (r.agency == 0 || r.agency > agencies)) {
      return Fail(fmt::format("the journal of the round in progress has agency {}, but "
                              "server.agencies is {}; resume it with the same agencies",
                              r.agency, agencies));
    }
  }
  // Keep the records whose rows are all in the file; offsets only grow.
  std::size_t keep = 0;
  std::uint64_t end = records.front().end;
  for (const JournalRecord& r : records) {
    if (r.end > *data_size || r.end < end || (r.kind != JournalKind::kBatch && keep > 0)) break;
    end = r.end;
    ++keep;
  }
  const std::uint64_t journal_keep = keep * kJournalRecordSize;
  if (*journal_size > journal_keep) {
    if (Status t = Truncate(journal_fd, journal_keep, "journal"); !t) return std::unexpected(t.error());
    out.journal_bytes_cut = *journal_size - journal_keep;
  }
  if (*data_size > end) {
    if (Status t = Truncate(data_fd, end, "bets file"); !t) return std::unexpected(t.error());
    out.data_bytes_cut = *data_size - end;
  }
  if (out.journal_bytes_cut > 0 || out.data_bytes_cut > 0) {
    if (::fdatasync(journal_fd) != 0 || ::fdatasync(data_fd) != 0) return FailErrno("fdatasync");
  }
  out.resumed = true;
  for (std::size_t i = 1; i < keep; ++i) {
    const JournalRecord& r = records[i];
    AgencyProgress& a = out.agencies[r.agency];
    a.last_seq = std::max(a.last_seq, r.seq);
    a.bets += r.count;
    ++out.batches;
    out.bets += r.count;
  }
  return out;
}

}  // namespace lottery
