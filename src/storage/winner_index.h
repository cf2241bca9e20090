// The winner index: the draw reads the documents of the winning bets from
// memory instead of scanning the whole bets file (docs/STORAGE.md, "The
// winner index"). It lives in the shared segment (WinnerIndex in
// shm/shared_state.h), in memory only: start-up recovery rebuilds it with
// one scan of the file, and each append adds its batch's winners under the
// bets file's flock. It covers the file up to `indexed_end`; CollectWinners
// scans whatever lies past that, so an append the index missed (a writer
// that died mid-append, a full index) costs the draw time, never a winner.
//
// The index holds only bets of one winning number, fixed when it is built:
// with draw.winning_number = "random" there is none and the draw scans.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shm/shared_state.h"
#include "storage/winner_scan.h"

namespace lottery {

// Adds the winner of `agency` with `document` (1..10 digits) to a batch's
// list for IndexBatch.
void AddIndexedWinner(std::vector<IndexedWinner>& batch, std::uint32_t agency,
                      std::string_view document);

// Start-up: scans the whole file behind `data_fd` and fills the index for
// `winning_number`, replacing what it held. With kRandomWinningNumber, or
// when the file ends inside a record (a scan of it and of later rows would
// not split where the index does), the index stays disabled. Returns the
// scan's figures. Call before any worker exists.
// `chunk_bytes` is the scan's read size (ScanWinners); with `digest_from`
// the same scan also digests each agency's rows from there (WinnerScan::rows).
Result<WinnerScan> RebuildWinnerIndex(int data_fd, SharedState& state, std::uint32_t agencies,
                                      std::uint32_t winning_number,
                                      std::size_t chunk_bytes = kScanChunkBytes,
                                      std::optional<std::uint64_t> digest_from = std::nullopt);

// Records that the rows [start, end), holding `bets` bets, were appended and
// that `winners` are the winning ones among them. Only extends the index
// when it covers the file up to `start` and has room; otherwise the index
// stops growing and the draw scans from its end. Call with the flock held
// and `state.mutex` locked: `held` is that lock (asserted).
void IndexBatch(SharedState& state, const SharedLock& held, std::uint64_t start, std::uint64_t end,
                std::uint64_t bets, std::span<const IndexedWinner> winners);

// The draw's reader: the same result as ScanWinners over the whole file
// (winners per agency in file order, bets, skipped, foreign), taken from the
// index where it covers the file and from a scan of the rest. Locks
// `state.mutex` to copy the index.
Result<WinnerScan> CollectWinners(int data_fd, SharedState& state, std::uint32_t agencies,
                                  std::uint32_t winning_number,
                                  std::size_t chunk_bytes = kScanChunkBytes);

}  // namespace lottery
