// ScanWinners reads a bets file (docs/STORAGE.md) once, start to end, and
// returns how many bets it holds and the documents of the winning ones, per
// agency. It is the draw's reader: one streaming pass with one reused buffer
// (memory bounded by chunk_bytes plus about 128 KiB, whatever the file size)
// and no heap allocation per bet, only per winner (and per line that does not
// parse, for its error message).
//
// The caller owns the descriptor; the scan reads it with pread() from offset
// 0, so the descriptor's own offset is left alone. The result owns its
// strings.
//
// The result is the one the reference reader (CsvReader + StoredRecordToBet)
// gives, with HasWon applied. A row as the writer writes it (no quote, no
// stray CR, CRLF line end) that lacks the winning number is only counted,
// which relies on HasWon deciding by the number alone. Every other line,
// each possible winner among them, goes through CsvReader's rules (quoting, a
// quoted line break, a lone CR as a line end, blank lines, a UTF-8 BOM, a
// torn last line) and StoredRecordToBet. The one known difference, for
// records longer than 64 KiB only: such a record is
// counted as one skipped line and the scan resumes after the first LF at or
// after its start. CsvReader does the same except for a long record that
// spans lines through a quoted line break or ends in a lone CR, where,
// depending on where its reads happened to end, it may instead resume after
// the record. The writer never produces such records (names are at most 100
// code points without control characters).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "wire/row_digest.h"

namespace lottery {

// How much one pread() asks for.
inline constexpr std::size_t kScanChunkBytes = 1 << 20;

struct WinnerScan {
  std::uint64_t bets = 0;  // well-formed bets, foreign ones included
  // Records that do not parse (agency 0 among them: StoredRecordToBet rejects
  // it) and a torn last line.
  std::uint64_t skipped = 0;
  std::uint64_t foreign = 0;  // well-formed bets whose agency is above `agencies`
  // winners[a]: the winning documents of agency a in file order, exactly as
  // stored (leading zeros kept). Size agencies + 1; winners[0] stays empty.
  std::vector<std::vector<std::string>> winners;
  // The file ended inside a record (an open quoted field, a last line
  // without its line end): a scan that went on past this end could have
  // read the next bytes as part of it.
  bool torn_end = false;
  // With `digest_from`: rows[a], agency a's bets that start at or after
  // that offset, counted and digested in file order (StoredRows), each as
  // its bet row (the line without its agency column and line end). Size
  // agencies + 1; empty without `digest_from`.
  std::vector<StoredRows> rows;
};

// Scans the whole file behind `fd` for bets of agencies 1..`agencies` that
// hold `winning_number` (HasWon). Fails only when reading fails.
// `chunk_bytes` is how much each read asks for (tests make it small so that
// lines straddle reads). With `begin` > 0 the scan starts at that offset,
// which must be where a record starts (the winner index's indexed_end), and
// a BOM there is not skipped. With `digest_from` the same pass also counts
// and digests each agency's rows from that offset on (WinnerScan::rows):
// start-up recovery's digests of the round in progress.
Result<WinnerScan> ScanWinners(int fd, std::uint32_t agencies, std::uint32_t winning_number,
                               std::size_t chunk_bytes = kScanChunkBytes, std::uint64_t begin = 0,
                               std::optional<std::uint64_t> digest_from = std::nullopt);

}  // namespace lottery
