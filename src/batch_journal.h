// The batch journal: a file beside the bets file (`<storage.path>.journal`)
// with one fixed-size record per stored batch, so that a restarted server
// knows which batch of which agency the bets file already holds. Format:
// docs/STORAGE.md, "The batch journal".
//
// Records are appended under the bets file's flock, after the batch's rows,
// and synced with them before the ack. Recovery (RecoverRound) runs in the
// parent before any worker exists.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "status.h"

namespace lottery {

inline constexpr std::size_t kJournalRecordSize = 40;

enum class JournalKind : std::uint8_t {
  kRoundStart = 1,     // `end`: size of the bets file when the round began
  kBatch = 2,          // batch `seq` of `agency`, `count` bets, rows end at `end`
  kRoundComplete = 3,  // the draw ran; `end`: size of the bets file then
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

// CRC-32 (IEEE 802.3, as zlib computes it).
std::uint32_t Crc32(const char* data, std::size_t size);

struct AgencyProgress {
  std::uint64_t last_seq = 0;
  std::uint64_t bets = 0;
};

// What start-up recovery found and did.
struct RoundRecovery {
  bool resumed = false;                // an unfinished round goes on
  std::vector<AgencyProgress> agencies;  // index 1..N; 0 unused
  std::uint64_t batches = 0;
  std::uint64_t bets = 0;
  std::uint64_t data_bytes_cut = 0;     // rows no journal record covers
  std::uint64_t journal_bytes_cut = 0;  // a torn record, or records past the rows
};

// Brings the bets file and the journal into agreement and returns the round
// they describe. An unfinished round (a round-start record, batches, no
// round-complete) is resumed: rows past the last batch record are cut (they
// were never acknowledged), and batch records whose rows are not all in the
// file are dropped. Otherwise (no journal, or the last round is complete) a
// new round starts: the journal is rewritten with one round-start record.
// Fails, changing nothing, when a record names an agency above `agencies`.
Result<RoundRecovery> RecoverRound(int data_fd, int journal_fd, std::uint32_t agencies);

}  // namespace lottery
