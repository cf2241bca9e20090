#include "ctl/commands.h"

#include <ctime>
#include <expected>
#include <vector>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "ctl/control_client.h"
#include "ctl/json.h"
#include "ctl/round_report.h"
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

Outcome<ControlReply> Ask(const CtlOptions& o, const std::string& command) {
  auto reply = AskServer(o.socket, ControlRequest{command, ""});
  if (!reply) return std::unexpected(Failure{ExitCodeForConnect(reply.error()), reply.error().message});
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

Outcome<std::string> Rounds(const CtlOptions& o) {
  auto r = Ask(o, "status");
  if (!r) return std::unexpected(r.error());
  auto archived = ListArchivedRounds(std::string(r->Get("storage_path").value_or("")));
  if (!archived) {
    return std::unexpected(Failure{ExitCodeForArchive(archived.error()), archived.error().message});
  }
  std::vector<RoundSummary> rounds = std::move(*archived);
  RoundSummary current;
  current.number = Number(*r, "round");
  const std::string_view state = r->Get("state").value_or("open");
  current.state = state == "drawn" ? RoundState::kDrawn
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
    return std::unexpected(Failure{1, fmt::format("no round {}: the current round is {}", n, current)});
  }
  if (n < current) return ArchivedRoundFiles(storage, n).result;
  const std::string_view state = status.Get("state").value_or("?");
  if (state != "drawn") {
    return std::unexpected(Failure{1, fmt::format("round {} is {}, not drawn", n, state)});
  }
  return CurrentRoundFiles(storage).result;
}

Outcome<std::string> Show(const CtlOptions& o) {
  auto r = Ask(o, "status");
  if (!r) return std::unexpected(r.error());
  auto path = ResultPath(*r, o.round);
  if (!path) return std::unexpected(path.error());
  auto result = ReadRoundResult(*path);
  if (!result) {
    return std::unexpected(Failure{ExitCodeForArchive(result.error()),
                                   fmt::format("round {}: {}", o.round, result.error().message)});
  }
  return o.json ? RoundResultJson(*result, o.winners) : RoundResultText(*result, o.winners);
}

Outcome<std::string> Verify(const CtlOptions& o) {
  auto r = Ask(o, "status");
  if (!r) return std::unexpected(r.error());
  auto checked = VerifyRound(std::string(r->Get("storage_path").value_or("")), o.round);
  if (!checked) {
    return std::unexpected(Failure{ExitCodeForArchive(checked.error()),
                                   fmt::format("round {}: {}", o.round, checked.error().message)});
  }
  std::string out = o.json ? VerificationJson(o.round, *checked) : VerificationText(o.round, *checked);
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
