// The peak resident set size of the calling process, for the benchmark's
// memory figures (docs/PERFORMANCE.md).
#pragma once

#include <optional>

namespace lottery {

// VmHWM from /proc/self/status, in KiB: the high-water mark of this
// program's own memory. getrusage()'s ru_maxrss is not used because on Linux
// it keeps the size of the process that forked and exec'ed us (a large
// benchmark driver would show up as our own peak). std::nullopt when
// /proc is not there.
std::optional<long> PeakRssKib();

}  // namespace lottery
