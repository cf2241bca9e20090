// lotteryctl's command line: `lotteryctl [--socket PATH] [--storage-backend
// file|postgresql] [--storage-dsn DSN] [--json] [--winners] COMMAND [N]`
// (docs/man/lotteryctl.8), and where the control socket is when --socket is
// not given.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/status.h"

namespace lottery {

struct CtlOptions {
  std::string socket;       // --socket, else DefaultCtlSocket
  bool json = false;        // --json: one JSON object on stdout
  bool winners = false;     // --winners (show): each agency's winning documents
  bool help = false;        // --help / -h
  std::string command;      // status, close, open, rounds, show, verify
  std::uint64_t round = 0;  // show N, verify N
  // Where rounds, show and verify read, as the server's storage.backend and
  // storage.postgresql_dsn: --storage-backend / --storage-dsn, else
  // $SERVER_STORAGE_BACKEND / $SERVER_STORAGE_DSN; empty: what the server's
  // status reports. Never printed (the DSN may hold a password).
  std::string storage_backend;  // "", "file" or "postgresql"
  std::string storage_dsn;
};

// argv[0] is the program name. Fails (kInvalidInput, exit 64) on an unknown
// option or command, a missing or extra argument, or N that is not a number.
Result<CtlOptions> ParseCtlOptions(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env);

// The server's default, seen from an operator's shell: $SERVER_CONTROL_SOCKET;
// else $RUNTIME_DIRECTORY/control.sock; else /run/lottery/control.sock when
// it exists (systemd's RuntimeDirectory=lottery, which a shell does not
// have in its environment); else <$SERVER_STORAGE_PATH or bets.csv>.control.
std::string DefaultCtlSocket(const std::map<std::string, std::string>& env);

// The --help text.
std::string CtlUsage();

}  // namespace lottery
