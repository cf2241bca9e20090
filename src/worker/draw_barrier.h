// DrawBarrier is where the workers meet before anyone reads winners: a
// cancellable, process-shared barrier built from the segment's robust mutex
// and its futex word `changed` (a bare pthread_barrier_t can be neither
// cancelled nor given a timeout, and a process-shared condition variable can
// be left broken by a waiter that is killed).
//
// Every agency's worker records FINISHED here. The worker that completes the
// barrier (the N-th finished agency) runs the draw: it reads the bets file
// once, writes every agency's winning documents to the winners file
// (worker/winners_file.h: a memfd the parent created before the first fork,
// so all workers share it) and
// publishes where each agency's list starts in the shared segment. If that
// worker dies mid-draw, the parent resets the state and a waiting worker takes
// over.
//
// Does not own anything: the segment, the store and the winners descriptor
// must outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"
#include "shm/shared_state.h"
#include "storage/batch_storage.h"
#include "storage/rounds.h"

namespace lottery {

class DrawBarrier {
 public:
  DrawBarrier(SharedSegment& shared, BatchStorage& store, int winners_fd,
              std::uint32_t winning_number)
      : shared_(shared), store_(store), winners_fd_(winners_fd), winning_number_(winning_number) {}

  // Records that `agency` finished sending (idempotent) and logs
  // agency_finished before the draw can start. Returns false, and records
  // nothing, when betting closed before it finished.
  Result<bool> MarkFinished(std::uint32_t agency);

  // Runs the draw here if every agency finished (or betting closed and at
  // least one did) and nobody ran or is running it. Returns whether it ran
  // here.
  Result<bool> DrawIfDue();

  enum class WaitResult { kDrawn, kCancelled, kFailed };

  // Blocks until the draw is done, running it here if it is due and nobody
  // else is running it. Returns kCancelled as soon as the server shuts down or
  // `cancelled()` returns true (it is polled a few times per second).
  WaitResult WaitForDraw(const std::function<bool()>& cancelled);

  // The winning documents of `agency`, in bets-file order. Only after kDrawn.
  Result<std::vector<std::string>> Winners(std::uint32_t agency) const;

 private:
  // Has the store draw the round (its result durable), then publishes it
  // (PublishRoundResult).
  Status RunDraw();
  // Logs a failed draw and returns its error.
  static Status DrawFailed(const Error& error);

  SharedSegment& shared_;
  BatchStorage& store_;
  int winners_fd_;
  std::uint32_t winning_number_;
};

// Writes every agency's winners of `result` to the winners file, publishes
// where each list is, and marks the draw done, so that workers answer
// WINNERS_QUERY from it: after a draw, and at start-up for a round drawn
// before (storage/recovery.h).
Status PublishRoundResult(const RoundResult& result, SharedSegment& shared, int winners_fd);

}  // namespace lottery
