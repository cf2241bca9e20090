#include "agency/agency.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "agency/agency_session.h"
#include "agency/agency_tls.h"
#include "agency/bet_sender.h"
#include "agency/dataset_reader.h"
#include "agency/server_link.h"
#include "common/csv.h"
#include "common/exit_codes.h"
#include "common/log.h"
#include "common/net.h"
#include "common/signals.h"
#include "common/unique_fd.h"
#include "wire/bet.h"
#include "wire/bet_row.h"
#include "wire/protocol.h"

namespace lottery {

int Agency::Stop(Step s) {
  if (s == Step::kCancelled) {
    Log(LogLevel::kInfo, "shutdown", Outcome::kSuccess, "client_id: {} | detail: signal received",
        config_.id);
    link_.Close("shutting down");
    Log(LogLevel::kInfo, "close", Outcome::kSuccess, "client_id: {} | resource: socket",
        config_.id);
  }
  return ExitCodeFor(s);
}

Step Agency::Unexpected(const Frame& reply, std::string_view request) {
  link_.Drop(fmt::format("unexpected {} in reply to {}", MessageTypeName(reply.type), request));
  return Step::kFatal;
}

Step Agency::Echo(const std::string& frame, std::string_view msg) {
  const Millis timeout = std::chrono::duration_cast<Millis>(config_.read_timeout);
  return Request(
      "receive_message", [&] { return link_.Ensure(LinkHello::kSkip); },
      [&](Frame& reply) { return link_.Exchange(frame, reply, timeout); },
      [&](const Frame& reply) {
        if (reply.type != static_cast<std::uint8_t>(MessageType::kEchoReply) ||
            reply.payload != msg) {
          Log(LogLevel::kError, "receive_message", Outcome::kFail,
              "client_id: {} | error: the reply does not echo the message", config_.id);
          return Step::kFatal;  // exit 76 (kExitProtocol)
        }
        link_.MarkProgress();
        Log(LogLevel::kInfo, "receive_message", Outcome::kSuccess, "client_id: {} | msg: {}",
            config_.id, reply.payload);
        return Step::kDone;
      },
      [&](bool) -> std::optional<Step> {
        if (link_.GaveUp()) return Step::kUnavailable;
        return std::nullopt;
      });
}

int Agency::RunEcho() {
  for (int k = 1; k <= config_.loop_amount; ++k) {
    std::string msg = fmt::format("[CLIENT {}] Message N°{}", config_.id, k);
    std::string frame;
    EncodeEcho(frame, msg);
    link_.MarkProgress();  // connect_timeout bounds each message's wait for its reply
    if (Step s = Echo(frame, msg); s != Step::kDone) return Stop(s);
    if (k < config_.loop_amount &&
        !link_.Sleep(std::chrono::duration_cast<Millis>(config_.loop_period))) {
      return Stop(Step::kCancelled);
    }
  }
  Log(LogLevel::kInfo, "loop_finished", Outcome::kSuccess, "client_id: {}", config_.id);
  link_.Close("loop finished");
  return kExitOk;
}

int Agency::RunBet(const std::map<std::string, std::string>& env) {
  auto get = [&](const char* name) -> std::string {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  const std::string first = get("NOMBRE"), last = get("APELLIDO"), document = get("DOCUMENTO"),
                    birthdate = get("NACIMIENTO"), number_text = get("NUMERO");
  for (const char* name : {"NOMBRE", "APELLIDO", "DOCUMENTO", "NACIMIENTO", "NUMERO"}) {
    if (get(name).empty()) {
      Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail,
          "client_id: {} | error: environment variable {} is not set", config_.id, name);
      return kExitDataErr;
    }
  }
  // Reuse the dataset's own parsing rules for the number.
  CsvRecord fields;
  fields.fields = {first, last, document, birthdate, number_text};
  auto bet = DatasetRecordToBet(fields, config_.id);
  std::optional<std::string> reason = bet ? ValidateBet(*bet, Today()) : bet.error().message;
  if (reason) {
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail, "client_id: {} | error: {}",
        config_.id, *reason);
    return kExitDataErr;
  }
  if (Step s = link_.Ensure(LinkHello::kSend); s != Step::kDone) return Stop(s);
  if (link_.welcome().finished) {
    // This agency said FINISHED: its bets are closed (the draw may have run).
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail,
        "client_id: {} | error: betting is closed for agency {}: it already said FINISHED "
        "this round",
        config_.id, config_.id);
    link_.Close("betting closed");
    return Stop(Step::kClosed);
  }
  // One batch through the same window as a dataset's batches.
  sender_.StartAt(link_.welcome().last_seq + 1, link_.welcome().bets_stored);
  BetBatchEncoder encoder(sender_.NextFrame(), sender_.next_seq());
  encoder.Add(*bet);
  if (Step s = sender_.Submit(1); s != Step::kDone) return Stop(s);
  if (Step s = sender_.Drain(); s != Step::kDone) return Stop(s);
  if (sender_.bets_rejected() > 0) return Stop(Step::kRejected);
  Log(LogLevel::kInfo, "apuesta_enviada", Outcome::kSuccess, "dni: {} | numero: {}", bet->document,
      bet->number);
  link_.Close("bet sent");
  return kExitOk;
}

int RunAgency(const AgencyConfig& config, const std::map<std::string, std::string>& env) {
  SetLogLevel(config.log_level);
  ::signal(SIGPIPE, SIG_IGN);
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "client_id: {} | server_address: {} | loop_amount: {} | loop_period: {} | log_level: {} | "
      "batch_max_amount: {} | batch_window: {} | mode: {} | dataset: {}",
      config.id, config.server_address, config.loop_amount, FormatDuration(config.loop_period),
      LogLevelName(config.log_level), config.batch_max_amount, config.batch_window,
      AgencyModeName(config.mode), config.DatasetPath());
  auto endpoints = ParseServerAddresses(config.server_address);
  if (!endpoints) {
    Log(LogLevel::kError, "config", Outcome::kFail, "error: server.address {}",
        endpoints.error().message);
    return kExitConfig;
  }
  auto signals = SignalFd::Create({SIGTERM, SIGINT});
  if (!signals) {
    Log(LogLevel::kError, "startup", Outcome::kFail, "error: {}", signals.error().message);
    return kExitOsErr;
  }
  auto tls = LoadAgencyTls(config);
  if (!tls) return kExitConfig;
  Agency agency(config, *tls ? &**tls : nullptr, std::move(*endpoints), std::move(*signals));
  switch (config.mode) {
    case AgencyMode::kEcho: return agency.RunEcho();
    case AgencyMode::kBet: return agency.RunBet(env);
    case AgencyMode::kLottery: break;
  }
  return agency.RunLottery();
}

}  // namespace lottery
