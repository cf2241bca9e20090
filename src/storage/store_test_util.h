// Test helpers for storage (tests and fuzz targets only): the one-batch and
// stop-and-wait appends the worker no longer uses, and the plain reference
// reader of a bets file that the draw's fast scanner (winner_scan.h) is
// checked against.
#pragma once

#include <fcntl.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/csv.h"
#include "common/unique_fd.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"

namespace lottery::testing {

// BetStore::AppendBatches of the one batch `seq` of `agency` (with `count`
// bets, `winners` among them, `digest` its share of the stored digest).
// Returns the offset where it ends, for MakeDurable; nothing, writing
// nothing, when repairing a dead writer's append shows that it is stored.
inline Result<std::optional<std::uint64_t>> AppendOneBatch(
    BetStore& store, std::string_view rows, SharedSegment& shared, std::uint32_t agency,
    std::uint64_t seq, std::uint64_t count, std::span<const IndexedWinner> winners = {},
    std::uint64_t digest = 0) {
  const BatchExtent one{seq, static_cast<std::uint32_t>(count), rows.size(), winners.size(),
                        digest};
  auto outcome =
      store.AppendBatches(rows, shared, agency, std::span<const BatchExtent>(&one, 1), winners);
  if (!outcome) return std::unexpected(outcome.error());
  if (outcome->skipped == 1) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(outcome->end);
}

// AppendOneBatch + MakeDurable: true when stored here, false when the batch
// was already stored.
inline Result<bool> AppendDurably(BetStore& store, std::string_view rows, SharedSegment& shared,
                                  std::uint32_t agency, std::uint64_t seq, std::uint64_t count) {
  auto end = AppendOneBatch(store, rows, shared, agency, seq, count);
  if (!end) return std::unexpected(end.error());
  if (!*end) return false;
  if (Status durable = store.MakeDurable(shared, **end); !durable) {
    return std::unexpected(durable.error());
  }
  return true;
}

// Calls `fn` for every complete, well-formed bet of the file at `path`, in
// file order (CsvReader + StoredRecordToBet). Lines that do not parse and a
// torn last line are skipped and counted in `skipped`.
inline Status ForEachStoredBet(const std::string& path,
                               const std::function<void(const BetView&)>& fn,
                               std::uint64_t& skipped) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + path);
  CsvReader reader(fd.get());
  while (true) {
    auto next = reader.Next();
    if (!next) return std::unexpected(next.error());
    if (!next->has_value()) return Ok();
    const CsvRecord& record = ***next;
    if (record.error || !record.terminated) {
      ++skipped;
      continue;
    }
    auto bet = StoredRecordToBet(record);
    if (!bet) {
      ++skipped;
      continue;
    }
    fn(*bet);
  }
}

}  // namespace lottery::testing
