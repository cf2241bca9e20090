#include "storage/winner_index.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "common/file_io.h"
#include "wire/bet.h"

namespace lottery {

static_assert(kIndexedDocumentBytes == kMaxDocumentDigits,
              "an indexed document holds the longest valid document");

void AddIndexedWinner(std::vector<IndexedWinner>& batch, std::uint32_t agency,
                      std::string_view document) {
  IndexedWinner w;
  w.agency = agency;
  w.length = static_cast<std::uint8_t>(std::min(document.size(), kIndexedDocumentBytes));
  std::memcpy(w.document, document.data(), w.length);
  batch.push_back(w);
}

Result<WinnerScan> RebuildWinnerIndex(int data_fd, SharedState& state, std::uint32_t agencies,
                                      std::uint32_t winning_number, std::size_t chunk_bytes,
                                      std::optional<std::uint64_t> digest_from) {
  {
    SharedLock lock(state);
    state.winner_index.enabled = false;
  }
  auto scan = ScanWinners(data_fd, agencies, winning_number, chunk_bytes, 0, digest_from);
  if (!scan) return scan;
  if (winning_number == kRandomWinningNumber || scan->torn_end) return scan;
  // Documents come from rows the scan parsed (StoredRecordToBet): at most
  // ten digits each.
  std::vector<IndexedWinner> entries;
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    for (const std::string& doc : scan->winners[a]) AddIndexedWinner(entries, a, doc);
  }
  if (entries.size() > kWinnerIndexCapacity) return scan;  // the draw scans, as before
  auto size = FileSize(data_fd);
  if (!size) return std::unexpected(size.error());
  SharedLock lock(state);
  WinnerIndex& index = state.winner_index;
  index.number = winning_number;
  index.skipped = scan->skipped;
  index.foreign = scan->foreign;
  std::copy(entries.begin(), entries.end(), index.entries);
  index.current = 0;
  index.reach[0] = WinnerIndexReach{*size, scan->bets, static_cast<std::uint32_t>(entries.size())};
  index.enabled = true;
  return scan;
}

void IndexBatch(SharedState& state, const SharedLock& held, std::uint64_t start, std::uint64_t end,
                std::uint64_t bets, std::span<const IndexedWinner> winners) {
  assert(held.Holds(state));
  (void)held;
  WinnerIndex& index = state.winner_index;
  const WinnerIndexReach now = index.reach[index.current & 1];
  if (!index.enabled || now.indexed_end != start) return;
  if (winners.size() > kWinnerIndexCapacity - now.count) return;
  // Entries past `count` belong to no reach yet: writing them changes nothing
  // until the switch below.
  std::copy(winners.begin(), winners.end(), index.entries + now.count);
  const std::uint32_t next = (index.current & 1) ^ 1;
  index.reach[next] = WinnerIndexReach{end, now.bets + bets,
                                       now.count + static_cast<std::uint32_t>(winners.size())};
  index.current = next;
}

Result<WinnerScan> CollectWinners(int data_fd, SharedState& state, std::uint32_t agencies,
                                  std::uint32_t winning_number, std::size_t chunk_bytes) {
  WinnerScan from_index;
  from_index.winners.resize(static_cast<std::size_t>(agencies) + 1);
  std::uint64_t begin = 0;
  {
    SharedLock lock(state);
    const WinnerIndex& index = state.winner_index;
    if (index.enabled && index.number == winning_number) {
      const WinnerIndexReach& reach = index.reach[index.current & 1];
      begin = reach.indexed_end;
      from_index.bets = reach.bets;
      from_index.skipped = index.skipped;
      from_index.foreign = index.foreign;
      for (std::uint32_t i = 0; i < reach.count && i < kWinnerIndexCapacity; ++i) {
        const IndexedWinner& w = index.entries[i];
        if (w.agency >= 1 && w.agency <= agencies) {
          from_index.winners[w.agency].emplace_back(w.document, w.length);
        }
      }
    }
  }
  auto rest = ScanWinners(data_fd, agencies, winning_number, chunk_bytes, begin);
  if (!rest) return rest;
  from_index.bets += rest->bets;
  from_index.skipped += rest->skipped;
  from_index.foreign += rest->foreign;
  from_index.torn_end = rest->torn_end;
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    auto& into = from_index.winners[a];
    into.insert(into.end(), std::make_move_iterator(rest->winners[a].begin()),
                std::make_move_iterator(rest->winners[a].end()));
  }
  return from_index;
}

}  // namespace lottery
