#include "ctl/commands.h"

#include <chrono>
#include <ctime>
#include <expected>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "ctl/control_client.h"
#include "ctl/json.h"
#include "ctl/round_report.h"
#include "storage/pg_store.h"
#include "storage/rounds.h"

namespace lottery {
namespace {

// A failed command: its exit code and one line saying why.
struct Failure {
  int code;
  std::string message;
  bool is_output = false;  // the message is the command's output (verify's differences)
};
template <typename T>
using Outcome = std::expected<T, Failure>;

int ExitCodeForConnect(const Error& e) {
  if (e.kind == ErrorKind::kProtocol) return kExitProtocol;
  if (e.sys_errno == EACCES || e.sys_errno == EPERM) return kExitNoPerm;
  return kExitUnavailable;
}

int ExitCodeForArchive(const Error& e) {
  return e.kind == ErrorKind::kCorruptData ? kExitDataErr : 1;
}

// Reaching the database: a bad DSN, a refused login or no (or another)
// lottery schema is 78; a database that is down or lost, 69.
int ExitCodeForPgConnect(const Error& e) {
  return e.kind == ErrorKind::kConfig ? kExitConfig : kExitUnavailable;
}

// Reading it: a result that does not decode is 65, a lost session 69.
int ExitCodeForPgRead(const Error& e) {
  if (e.kind == ErrorKind::kCorruptData) return kExitDataErr;
  return e.kind == ErrorKind::kIo ? kExitUnavailable : 1;
}

Outcome<ControlReply> Ask(const CtlOptions& o, const std::string& command) {
  auto reply = AskServer(o.socket, ControlRequest{command, ""});
  if (!reply)
    return std::unexpected(Failure{ExitCodeForConnect(reply.error()), reply.error().message});
  if (!reply->ok()) {
    const bool denied = reply->error().starts_with("permission denied");
    return std::unexpected(Failure{denied ? kExitNoPerm : 1, std::string(reply->error())});
  }
  return *reply;
}

std::uint64_t Number(const ControlReply& r, std::string_view key) {
  const std::string value(r.Get(key).value_or("0"));
  return std::strtoull(value.c_str(), nullptr, 10);
}

bool AllDigits(std::string_view v) {
  if (v.empty() || v.size() > 18) return false;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Every field of a reply but ok, numbers as numbers.
std::string ReplyJson(const ControlReply& r) {
  JsonObject json;
  json.Bool("ok", true);
  for (const auto& [k, v] : r.fields()) {
    if (k == "ok") continue;
    if (AllDigits(v)) json.Raw(k, v);
    else json.String(k, v);
  }
  return json.str();
}

Outcome<std::string> Status(const CtlOptions& o) {
  auto r = Ask(o, "status");
  if (!r) return std::unexpected(r.error());
  if (o.json) return ReplyJson(*r) + "\n";
  return fmt::format(
      "round: {}\nstate: {}\nagencies: {} configured, {} connected, {} finished\nbets: {}\n"
      "storage_path: {}\n",
      r->Get("round").value_or("?"), r->Get("state").value_or("?"),
      r->Get("agencies").value_or("?"), r->Get("connected").value_or("?"),
      r->Get("finished").value_or("?"), r->Get("bets").value_or("?"),
      r->Get("storage_path").value_or("?"));
}

Outcome<std::string> Close(const CtlOptions& o) {
  auto r = Ask(o, "close");
  if (!r) return std::unexpected(r.error());
  if (o.json) return ReplyJson(*r) + "\n";
  return fmt::format("betting closed: round {} is {}\n", r->Get("round").value_or("?"),
                     r->Get("state").value_or("?"));
}

Outcome<std::string> Open(const CtlOptions& o) {
  auto r = Ask(o, "open");
  if (!r) return std::unexpected(r.error());
  if (o.json) return ReplyJson(*r) + "\n";
  return fmt::format("round {} is open\n", r->Get("round").value_or("?"));
}

// Where rounds, show and verify read: the server's archive (with its status
// reply: storage_path and the current round) or a PostgreSQL database.
struct RoundSource {
  std::optional<ControlReply> status;  // file backend
  std::string dsn;                     // postgresql backend
};

// The backend and DSN from the flags or the environment; what the server's
// status reports for whatever they leave out (storage_backend, and
// storage_dsn without its password). A database named in full needs no
// server.
Outcome<RoundSource> FindRounds(const CtlOptions& o) {
  std::string backend = o.storage_backend;
  RoundSource source{std::nullopt, o.storage_dsn};
  if (backend != "postgresql" || source.dsn.empty()) {
    auto r = Ask(o, "status");
    if (!r) return std::unexpected(r.error());
    if (backend.empty()) backend = std::string(r->Get("storage_backend").value_or("file"));
    if (backend != "postgresql") {
      source.status = std::move(*r);
      return source;
    }
    if (source.dsn.empty()) source.dsn = std::string(r->Get("storage_dsn").value_or(""));
  }
  if (source.dsn.empty()) {
    return std::unexpected(Failure{kExitConfig,
                                   "the storage backend is postgresql but no DSN is "
                                   "known: give --storage-dsn or SERVER_STORAGE_DSN"});
  }
  return source;
}

Outcome<PgSession> ConnectPg(const std::string& dsn) {
  auto session = PgSession::Connect(dsn, "lotteryctl", std::chrono::seconds(10));
  if (!session) {
    return std::unexpected(Failure{ExitCodeForPgConnect(session.error()), session.error().message});
  }
  if (auto schema = CheckPgSchema(*session); !schema) {
    return std::unexpected(Failure{ExitCodeForPgConnect(schema.error()), schema.error().message});
  }
  return std::move(*session);
}

// Every round in the database. A drawn round below the highest is shown
// archived, as on the file backend: the next round was opened after it.
Outcome<std::vector<RoundSummary>> PgRounds(PgSession& session) {
  auto rounds = ListPgRounds(session);
  if (!rounds)
    return std::unexpected(Failure{ExitCodeForPgRead(rounds.error()), rounds.error().message});
  for (RoundSummary& r : *rounds) {
    if (r.state == RoundState::kDrawn && r.number < rounds->back().number) {
      r.state = RoundState::kArchived;
    }
  }
  return std::move(*rounds);
}

// Round n must exist and be drawn (show, verify): the file backend's messages.
Outcome<bool> PgDrawn(PgSession& session, std::uint64_t n) {
  auto rounds = PgRounds(session);
  if (!rounds) return std::unexpected(rounds.error());
  const std::uint64_t current = rounds->empty() ? 0 : rounds->back().number;
  for (const RoundSummary& r : *rounds) {
    if (r.number != n) continue;
    if (r.state == RoundState::kDrawn || r.state == RoundState::kArchived) return true;
    return std::unexpected(
        Failure{1, fmt::format("round {} is {}, not drawn", n, RoundStateName(r.state))});
  }
  return std::unexpected(
      Failure{1, fmt::format("no round {}: the current round is {}", n, current)});
}

Outcome<std::string> PgRoundsCommand(const CtlOptions& o, const std::string& dsn) {
  auto session = ConnectPg(dsn);
  if (!session) return std::unexpected(session.error());
  auto rounds = PgRounds(*session);
  if (!rounds) return std::unexpected(rounds.error());
  return o.json ? RoundsJson(*rounds) : RoundsTable(*rounds);
}

Outcome<std::string> PgShow(const CtlOptions& o, const std::string& dsn) {
  auto session = ConnectPg(dsn);
  if (!session) return std::unexpected(session.error());
  if (auto drawn = PgDrawn(*session, o.round); !drawn) return std::unexpected(drawn.error());
  auto result = ReadPgResult(*session, o.round);
  if (!result) {
    return std::unexpected(Failure{ExitCodeForPgRead(result.error()),
                                   fmt::format("round {}: {}", o.round, result.error().message)});
  }
  return o.json ? RoundResultJson(*result, o.winners) : RoundResultText(*result, o.winners);
}

Outcome<RoundVerification> PgVerify(const CtlOptions& o, const std::string& dsn) {
  auto session = ConnectPg(dsn);
  if (!session) return std::unexpected(session.error());
  if (auto drawn = PgDrawn(*session, o.round); !drawn) return std::unexpected(drawn.error());
  auto checked = VerifyPgRound(*session, o.round);
  if (!checked) {
    return std::unexpected(Failure{ExitCodeForPgRead(checked.error()),
                                   fmt::format("round {}: {}", o.round, checked.error().message)});
  }
  return std::move(*checked);
}

Outcome<std::string> Rounds(const CtlOptions& o) {
  auto source = FindRounds(o);
  if (!source) return std::unexpected(source.error());
  if (!source->status) return PgRoundsCommand(o, source->dsn);
  const ControlReply* r = &*source->status;
  auto archived = ListArchivedRounds(std::string(r->Get("storage_path").value_or("")));
  if (!archived) {
    return std::unexpected(Failure{ExitCodeForArchive(archived.error()), archived.error().message});
  }
  std::vector<RoundSummary> rounds = std::move(*archived);
  RoundSummary current;
  current.number = Number(*r, "round");
  const std::string_view state = r->Get("state").value_or("open");
  current.state = state == "drawn"    ? RoundState::kDrawn
                  : state == "closed" ? RoundState::kClosed
                                      : RoundState::kOpen;
  current.bets = Number(*r, "bets");
  current.winners = Number(*r, "current_round_winners");
  current.drawn_at = static_cast<std::int64_t>(Number(*r, "current_round_drawn_at"));
  rounds.push_back(current);
  return o.json ? RoundsJson(rounds) : RoundsTable(rounds);
}

// The result file of round n: the current round's when it is n and drawn.
Outcome<std::string> ResultPath(const ControlReply& status, std::uint64_t n) {
  const std::string storage(status.Get("storage_path").value_or(""));
  const std::uint64_t current = Number(status, "round");
  if (n > current) {
    return std::unexpected(
        Failure{1, fmt::format("no round {}: the current round is {}", n, current)});
  }
  if (n < current) return ArchivedRoundFiles(storage, n).result;
  const std::string_view state = status.Get("state").value_or("?");
  if (state != "drawn") {
    return std::unexpected(Failure{1, fmt::format("round {} is {}, not drawn", n, state)});
  }
  return CurrentRoundFiles(storage).result;
}

Outcome<std::string> Show(const CtlOptions& o) {
  auto source = FindRounds(o);
  if (!source) return std::unexpected(source.error());
  if (!source->status) return PgShow(o, source->dsn);
  const ControlReply* r = &*source->status;
  auto path = ResultPath(*r, o.round);
  if (!path) return std::unexpected(path.error());
  auto result = ReadRoundResult(*path);
  if (!result) {
    return std::unexpected(Failure{ExitCodeForArchive(result.error()),
                                   fmt::format("round {}: {}", o.round, result.error().message)});
  }
  return o.json ? RoundResultJson(*result, o.winners) : RoundResultText(*result, o.winners);
}

Outcome<RoundVerification> FileVerify(const ControlReply& status, std::uint64_t n) {
  auto checked = VerifyRound(std::string(status.Get("storage_path").value_or("")), n);
  if (!checked) {
    return std::unexpected(Failure{ExitCodeForArchive(checked.error()),
                                   fmt::format("round {}: {}", n, checked.error().message)});
  }
  return std::move(*checked);
}

Outcome<std::string> Verify(const CtlOptions& o) {
  auto source = FindRounds(o);
  if (!source) return std::unexpected(source.error());
  auto checked = source->status ? FileVerify(*source->status, o.round) : PgVerify(o, source->dsn);
  if (!checked) return std::unexpected(checked.error());
  std::string out =
      o.json ? VerificationJson(o.round, *checked) : VerificationText(o.round, *checked);
  if (!checked->ok()) return std::unexpected(Failure{1, std::move(out), true});
  return out;
}

Outcome<std::string> Dispatch(const CtlOptions& o) {
  if (o.command == "status") return Status(o);
  if (o.command == "close") return Close(o);
  if (o.command == "open") return Open(o);
  if (o.command == "rounds") return Rounds(o);
  if (o.command == "show") return Show(o);
  return Verify(o);
}

}  // namespace

CtlResult RunCtlCommand(const CtlOptions& options) {
  auto done = Dispatch(options);
  if (done) return CtlResult{kExitOk, std::move(*done), {}};
  CtlResult failed{done.error().code, {}, {}};
  if (done.error().is_output) {
    // The differences themselves are the output.
    failed.out = std::move(done.error().message);
    failed.err = fmt::format("lotteryctl: round {} does not match its record\n", options.round);
    return failed;
  }
  failed.err = fmt::format("lotteryctl: {}\n", done.error().message);
  if (options.json) {
    failed.out = JsonObject().Bool("ok", false).String("error", done.error().message).str() + "\n";
  }
  return failed;
}

}  // namespace lottery
