// The installed programs: crash points do nothing (see crash_point.h).
#include "common/crash_point.h"

namespace lottery {

void CrashPointHit(const char*) {}

}  // namespace lottery
