// Group commit for storage.sync = "always": one fdatasync() of the bets file
// and its journal covers every batch written before it started, so writers
// that wait for a sync in flight find their bytes covered and do not sync
// again; a sync wakes all the writers it covers at once. No lock is held
// across fdatasync(), so other workers keep appending meanwhile. The state
// lives in the shared segment (SyncState, with its own robust mutex, never
// held together with SharedState::mutex).
#pragma once

#include <cstdint>
#include <string>

#include "common/status.h"
#include "shm/metrics.h"
#include "shm/shared_state.h"

namespace lottery {

// Records that every byte before `end` has been written (after a complete
// append, under the flock). The mark only moves forward.
void AdvanceWrittenEnd(SyncState& sync, std::uint64_t end);

// Returns once every byte before `end` is on disk, running fdatasync() on
// both descriptors only when no sync since that byte was written covers it
// (and none in flight does). A failed sync fails its leader's request only;
// the writers waiting for it try again with a sync of their own.
// `path` names the bets file in errors. Each fdatasync() is timed into
// `fdatasync_times`.
Status GroupCommit(SyncState& sync, int data_fd, int journal_fd, const std::string& path,
                   std::uint64_t end, SharedHistogram& fdatasync_times);

// fdatasync(fd), retried on EINTR and timed into `times`. Returns 0 or -1
// with errno set, like fdatasync().
int TimedFdatasync(int fd, SharedHistogram& times);

}  // namespace lottery
