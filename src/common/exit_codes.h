// The exit codes of both programs, from sysexits(3), so that scripts and
// service managers can tell a bad flag from a bad file from an outage.
#pragma once

namespace lottery {

inline constexpr int kExitOk = 0;
inline constexpr int kExitUsage = 64;        // EX_USAGE: bad command-line flag
inline constexpr int kExitDataErr = 65;      // EX_DATAERR: bets refused
inline constexpr int kExitNoInput = 66;      // EX_NOINPUT: dataset unreadable
inline constexpr int kExitNoUser = 67;       // EX_NOUSER: agency id outside the server's range
inline constexpr int kExitUnavailable = 69;  // EX_UNAVAILABLE: server unreachable
inline constexpr int kExitSoftware = 70;     // EX_SOFTWARE: internal error
inline constexpr int kExitOsErr = 71;        // EX_OSERR: cannot bind, no shared memory
inline constexpr int kExitCantCreate = 73;   // EX_CANTCREAT: bets file not writable
// EX_TEMPFAIL: held by another process: the server's bets file by another
// server, the agency's id by another agency process.
inline constexpr int kExitTempFail = 75;
inline constexpr int kExitProtocol = 76;  // EX_PROTOCOL: the peer broke the protocol
inline constexpr int kExitNoPerm = 77;    // EX_NOPERM: betting is closed (the round was drawn)
inline constexpr int kExitConfig = 78;    // EX_CONFIG: bad configuration

}  // namespace lottery
