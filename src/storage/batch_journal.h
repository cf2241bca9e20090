// The batch journal: a file beside the bets file (`<storage.path>.journal`)
// with one fixed-size record per stored batch, so that a restarted server
// knows which batch of which agency the bets file already holds. Format:
// docs/STORAGE.md, "The batch journal".
//
// Records are appended under the bets file's flock, after the batch's rows,
// and synced with them before the ack. Recovery (storage/recovery.h) reads
// them in the parent before any worker exists.
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "storage/file_lock.h"

namespace lottery {

inline constexpr std::size_t kJournalRecordSize = 40;

enum class JournalKind : std::uint8_t {
  kRoundStart = 1,      // `end`: size of the bets file when the round began
  kBatch = 2,           // batch `seq` of `agency`, `count` bets, rows end at `end`
  kRoundComplete = 3,   // the draw ran and its result is durable; `end`: size of the bets file then
  kAgencyFinished = 4,  // `agency` said FINISHED with `count` bets stored; `end`: file size then
  kBettingClosed = 5,   // betting closed before every agency finished; `end`: file size then
};

struct JournalRecord {
  JournalKind kind = JournalKind::kBatch;
  std::uint32_t agency = 0;
  std::uint32_t count = 0;
  std::uint64_t seq = 0;
  std::uint64_t end = 0;

  bool operator==(const JournalRecord&) const = default;
};

// Appends the 40 bytes of `record` to `out`.
void EncodeJournalRecord(std::string& out, const JournalRecord& record);
// Decodes 40 bytes; fails on a bad magic, kind or checksum.
Result<JournalRecord> DecodeJournalRecord(const char* bytes);

// Appends one record at the end of the journal, first cutting a torn record
// so that records stay aligned. Call with the bets file's flock held:
// `flocked` is that lock (asserted).
Status AppendJournalRecord(const FileLock& flocked, int journal_fd, const JournalRecord& record);

// Whether the journal's last whole record is batch `seq` of `agency`.
bool JournalEndsWith(int journal_fd, std::uint32_t agency, std::uint64_t seq);

}  // namespace lottery
