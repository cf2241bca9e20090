#include "ctl/ctl_options.h"

#include <unistd.h>

#include <charconv>

#include <fmt/format.h>

#include "wire/control_protocol.h"

namespace lottery {
namespace {

constexpr const char* kSystemdSocket = "/run/lottery/control.sock";

std::string EnvOr(const std::map<std::string, std::string>& env, const std::string& name,
                  const std::string& fallback) {
  auto it = env.find(name);
  return it == env.end() || it->second.empty() ? fallback : it->second;
}

bool TakesRound(const std::string& command) { return command == "show" || command == "verify"; }

bool KnownCommand(const std::string& command) {
  for (const char* c : {"status", "close", "open", "rounds", "show", "verify"}) {
    if (command == c) return true;
  }
  return false;
}

std::unexpected<Error> Usage(std::string message) {
  return Fail(ErrorKind::kInvalidInput, std::move(message));
}

// Options first, then the command and its argument (positional words).
Status TakeOption(CtlOptions& o, const std::vector<std::string>& argv, std::size_t& i) {
  const std::string& a = argv[i];
  if (a == "--json") o.json = true;
  else if (a == "--winners") o.winners = true;
  else if (a == "--help" || a == "-h") o.help = true;
  else if (a.starts_with("--socket=")) o.socket = a.substr(9);
  else if (a == "--socket") {
    if (i + 1 >= argv.size()) return Usage("--socket needs a path");
    o.socket = argv[++i];
  } else if (a.starts_with("--storage-backend=")) o.storage_backend = a.substr(18);
  else if (a == "--storage-backend") {
    if (i + 1 >= argv.size()) return Usage("--storage-backend needs file or postgresql");
    o.storage_backend = argv[++i];
  } else if (a.starts_with("--storage-dsn=")) o.storage_dsn = a.substr(14);
  else if (a == "--storage-dsn") {
    if (i + 1 >= argv.size()) return Usage("--storage-dsn needs a DSN");
    o.storage_dsn = argv[++i];
  } else {
    return Usage(fmt::format("unknown option {}", a));
  }
  return Ok();
}

}  // namespace

std::string DefaultCtlSocket(const std::map<std::string, std::string>& env) {
  if (auto it = env.find("SERVER_CONTROL_SOCKET"); it != env.end() && !it->second.empty()) {
    return it->second;
  }
  const std::string runtime = EnvOr(env, "RUNTIME_DIRECTORY", "");
  if (runtime.empty() && ::access(kSystemdSocket, F_OK) == 0) return kSystemdSocket;
  return DefaultControlSocketPath(EnvOr(env, "SERVER_STORAGE_PATH", "bets.csv"), runtime);
}

Result<CtlOptions> ParseCtlOptions(const std::vector<std::string>& argv,
                                   const std::map<std::string, std::string>& env) {
  CtlOptions o;
  std::vector<std::string> words;
  for (std::size_t i = 1; i < argv.size(); ++i) {
    if (argv[i].starts_with("-") && argv[i] != "-") {
      if (Status taken = TakeOption(o, argv, i); !taken) return std::unexpected(taken.error());
    } else {
      words.push_back(argv[i]);
    }
  }
  if (o.socket.empty()) o.socket = DefaultCtlSocket(env);
  if (o.storage_backend.empty()) o.storage_backend = EnvOr(env, "SERVER_STORAGE_BACKEND", "");
  if (o.storage_dsn.empty()) o.storage_dsn = EnvOr(env, "SERVER_STORAGE_DSN", "");
  if (!o.storage_backend.empty() && o.storage_backend != "file" &&
      o.storage_backend != "postgresql") {
    return Usage(
        fmt::format("storage backend must be file or postgresql, not {}", o.storage_backend));
  }
  if (o.help) return o;
  if (words.empty()) return Usage("no command given");
  o.command = words[0];
  if (!KnownCommand(o.command)) return Usage(fmt::format("unknown command {}", o.command));
  const std::size_t wanted = TakesRound(o.command) ? 2 : 1;
  if (words.size() != wanted) {
    return Usage(wanted == 2 ? fmt::format("{} needs a round number", o.command)
                             : fmt::format("{} takes no argument", o.command));
  }
  if (wanted == 2) {
    const std::string& n = words[1];
    auto [end, ec] = std::from_chars(n.data(), n.data() + n.size(), o.round);
    if (ec != std::errc() || end != n.data() + n.size() || o.round == 0) {
      return Usage(fmt::format("round number must be a positive integer, not {}", n));
    }
  }
  if (o.winners && o.command != "show") return Usage("--winners goes with show");
  return o;
}

std::string CtlUsage() {
  return "usage: lotteryctl [--socket PATH] [--storage-backend B] [--storage-dsn DSN] [--json] "
         "COMMAND\n"
         "Talks to a running lottery-server over its control socket.\n"
         "\n"
         "commands:\n"
         "  status            the round: number, state, agencies, bets stored\n"
         "  close             close betting now (as SIGUSR2 does)\n"
         "  open              archive the drawn round and open the next one\n"
         "  rounds            every round: number, state, bets, winners, when drawn\n"
         "  show N [--winners]  round N's result (--winners: each agency's winning documents)\n"
         "  verify N          check archived round N against its recorded result\n"
         "\n"
         "options:\n"
         "  --socket PATH     the server's control socket (default: $SERVER_CONTROL_SOCKET,\n"
         "                    $RUNTIME_DIRECTORY/control.sock, /run/lottery/control.sock if it\n"
         "                    exists, else <$SERVER_STORAGE_PATH or bets.csv>.control)\n"
         "  --storage-backend file|postgresql\n"
         "                    where rounds, show and verify read (default:\n"
         "                    $SERVER_STORAGE_BACKEND, else what the server reports)\n"
         "  --storage-dsn DSN  the PostgreSQL database (default: $SERVER_STORAGE_DSN, else\n"
         "                    the server's DSN without its password; the password from\n"
         "                    libpq's sources: ~/.pgpass, PGPASSFILE, PGPASSWORD)\n"
         "  --json            print one JSON object\n"
         "  --help            this text\n"
         "\n"
         "exit codes: 0 ok, 1 refused by the server or verify found differences, 64 usage, "
         "65 archive data corrupt, 69 server or database unreachable, 76 bad reply, "
         "77 permission denied, 78 bad DSN, login refused or no lottery schema\n";
}

}  // namespace lottery
