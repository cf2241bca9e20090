// lotteryctl's commands (docs/man/lotteryctl.8). status, close and open ask
// the server over the control socket; rounds, show and verify ask it only
// for storage_path and the current round, then read the archive themselves
// (storage/rounds.h), or the PostgreSQL database (storage/pg_store.h) on
// that backend, never writing to it.
#pragma once

#include <string>

#include "ctl/ctl_options.h"

namespace lottery {

// What a command printed and its exit code (common/exit_codes.h): 0; 1 the
// server refused or verify found differences; 65 archive data corrupt; 69
// server or database unreachable; 76 a reply that is not the protocol; 77
// permission denied; 78 a bad DSN, a refused login or no lottery schema.
struct CtlResult {
  int code = 0;
  std::string out;  // stdout: text, or one JSON object with --json
  std::string err;  // stderr: "lotteryctl: <why>" on failure
};

CtlResult RunCtlCommand(const CtlOptions& options);

}  // namespace lottery
