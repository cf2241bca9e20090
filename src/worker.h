// A worker is the forked child that serves one connection, from the agency's
// HELLO to its winners (or an echo peer, or a peer that misbehaves). It opens
// its own descriptor on the bets file, since flock() only excludes between
// separate opens of the file.
//
// The worker borrows everything the parent set up before fork(): the shared
// segment and the winners file must stay mapped/open for its whole life.
#pragma once

#include "config.h"
#include "shared_state.h"
#include "unique_fd.h"

namespace lottery {

// Serves `connection` and returns the worker's exit status (0 on a clean end,
// including a shutdown; 1 when the worker itself failed).
int RunWorker(UniqueFd connection, const ServerConfig& config, SharedSegment& shared,
              int winners_fd);

}  // namespace lottery
