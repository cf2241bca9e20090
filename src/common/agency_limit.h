// The one limit on the number of agencies in a round, ids 1..kMaxAgencies.
// Both programs' configurations check against it and the server's shared
// segment is sized by it, so it lives in the one folder all of them share.
#pragma once

namespace lottery {

inline constexpr int kMaxAgencies = 1000;

}  // namespace lottery
