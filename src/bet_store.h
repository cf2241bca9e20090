// BetStore appends bets to the one bets file (format: docs/STORAGE.md) and
// reads them back for the draw. Many worker processes each open their own
// BetStore on the same path; an exclusive flock() serialises appends, and the
// bookkeeping that must match the file (sequence numbers, counts) is updated
// in the shared segment under that same flock.
//
// The store owns its descriptor. The SharedSegment passed to Append must
// outlive the call.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "bet.h"
#include "shared_state.h"
#include "status.h"
#include "unique_fd.h"

namespace lottery {

class BetStore {
 public:
  // Opens (creating with mode 0644 when missing) the bets file.
  static Result<BetStore> Open(const std::string& path);

  // Appends one batch of complete CSV rows as a single write at the end of
  // the file, all or nothing, and records in the shared segment that batch
  // `seq` of `agency` (with `count` bets) is stored. Returns false, writing
  // nothing, when repairing a dead writer's append shows that batch `seq` is
  // already stored. On a write failure the file is cut back to where it was
  // and nothing is recorded.
  Result<bool> Append(std::string_view rows, SharedSegment& shared, std::uint32_t agency,
                      std::uint64_t seq, std::uint64_t count);

  // Repairs an append left behind by a dead writer (see
  // ResolvePendingAppend), taking the flock. Call before trusting an
  // agency's last sequence number, e.g. when it reconnects.
  Status Recover(SharedSegment& shared);

  // Calls `fn` for every complete, well-formed bet in file order. Lines that
  // do not parse and a torn last line are skipped and counted in `skipped`.
  Status ForEachBet(const std::function<void(const BetView&)>& fn, std::uint64_t& skipped) const;

  // Current size of the file in bytes.
  Result<std::uint64_t> Size() const;

  const std::string& path() const { return path_; }
  int fd() const { return fd_.get(); }

 private:
  BetStore(std::string path, UniqueFd fd) : path_(std::move(path)), fd_(std::move(fd)) {}

  std::string path_;
  UniqueFd fd_;
};

// Repairs the file after a writer died mid-append: commits a batch that
// reached the file whole, cuts off a torn one. Call with the flock held and
// the shared mutex locked. Exposed for tests.
void ResolvePendingAppend(int fd, SharedState& state);

}  // namespace lottery
