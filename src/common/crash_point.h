// Named crash points for the fault-injection suite (tests/faults/).
//
// CRASH_POINT("after_rows") calls CrashPointHit, which is empty in the
// installed programs (crash_point_off.cc). The test build also links
// lottery-server-faults, the same server with crash_point.cc: there a point
// is armed by the environment variable LOTTERY_CRASH_AT="<name>:<n>" and, on
// its n-th hit in a process, SIGKILLs the whole process group (the parent
// and every worker), as a power cut would.
#pragma once

namespace lottery {

void CrashPointHit(const char* name);

}  // namespace lottery

#define CRASH_POINT(name) ::lottery::CrashPointHit(name)
