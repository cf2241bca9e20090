#include "agency/agency.h"

#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "agency/bet_sender.h"
#include "agency/progress_line.h"
#include "agency/resume.h"
#include "agency/dataset_reader.h"
#include "agency/agency_tls.h"
#include "agency/server_link.h"
#include "common/csv.h"
#include "common/exit_codes.h"
#include "common/file_io.h"
#include "common/log.h"
#include "common/net.h"
#include "common/peak_rss.h"
#include "common/signals.h"
#include "common/unique_fd.h"
#include "wire/bet.h"
#include "wire/bet_row.h"
#include "wire/protocol.h"

namespace lottery {
namespace {

// Between two looks at the signal descriptor while records are read:
// sending notices signals, this covers long runs of skipped lines.
constexpr std::uint64_t kRecordsPerSignalCheck = 4096;

class Agency {
 public:
  Agency(const AgencyConfig& config, const TlsContext* tls, std::vector<HostPort> endpoints,
         SignalFd signals)
      : config_(config),
        signals_(std::move(signals)),
        link_(config, tls, std::move(endpoints), signals_),
        sender_(config, link_) {}

  int RunLottery();
  int RunEcho();
  int RunBet(const std::map<std::string, std::string>& env);

 private:
  Step SendFinished(std::uint64_t& stored);
  // Collects this agency's winners: at most `max_winners` documents (the
  // bets the server stored for it), each 1..10 digits; a server that sends
  // more, or anything else, broke the protocol.
  Step QueryWinners(std::vector<std::string>& winners, std::uint64_t max_winners);
  int Stop(Step s);

  const AgencyConfig& config_;
  SignalFd signals_;
  ServerLink link_;
  BetSender sender_;
};

int Agency::Stop(Step s) {
  if (s == Step::kCancelled) {
    Log(LogLevel::kInfo, "shutdown", Outcome::kSuccess, "client_id: {} | detail: signal received",
        config_.id);
    link_.Close("shutting down");
    Log(LogLevel::kInfo, "close", Outcome::kSuccess, "client_id: {} | resource: socket", config_.id);
  }
  return ExitCodeFor(s);
}

Step Agency::SendFinished(std::uint64_t& stored) {
  std::string frame;
  EncodeFinished(frame);
  while (true) {
    if (Step s = sender_.Connect(); s != Step::kDone) return s;
    Frame reply;
    Step s = link_.Exchange(frame, reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
    if (s == Step::kRetry) continue;
    if (s != Step::kDone) return s;
    if (reply.type == static_cast<std::uint8_t>(MessageType::kFinishedAck)) {
      auto n = DecodeFinishedAck(reply.payload);
      if (!n) {
        link_.Drop(n.error().message);
        return Step::kFatal;
      }
      stored = *n;
      link_.MarkFinished();
      link_.MarkProgress();
      return Step::kDone;
    }
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "finished");
      if (e == Step::kRetry) continue;
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to FINISHED", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

Step Agency::QueryWinners(std::vector<std::string>& winners, std::uint64_t max_winners) {
  std::string frame;
  EncodeWinnersQuery(frame);
  while (true) {
    if (Step s = sender_.Connect(); s != Step::kDone) return s;
    if (!link_.welcome().finished) {
      // A restarted server that lost FINISHED: say it again first.
      std::uint64_t stored = 0;
      if (Step s = SendFinished(stored); s != Step::kDone) return s;
    }
    winners.clear();
    Frame reply;
    // The draw waits for every agency: no bound on this wait.
    Step s = link_.Exchange(frame, reply, std::nullopt);
    while (s == Step::kDone && reply.type == static_cast<std::uint8_t>(MessageType::kWinners)) {
      std::vector<std::string_view> docs;
      auto last = DecodeWinners(reply.payload, docs);
      if (!last) {
        link_.Drop(last.error().message);
        return Step::kFatal;
      }
      for (std::string_view d : docs) {
        // A document is what a bet holds: 1..10 digits. Checked before it is
        // kept, so a hostile server can neither grow this process without
        // bound nor put other text on stdout.
        const bool digits = IsDocument(d);
        if (!digits || winners.size() >= max_winners) {
          Log(LogLevel::kError, "consulta_ganadores", Outcome::kFail,
              "client_id: {} | error: {}", config_.id,
              digits ? fmt::format("the server sent more winners than the {} bets it stored",
                                   max_winners)
                     : std::string("the server sent a winner that is not a document of 1 to 10 "
                                   "digits"));
          link_.Drop("winners list refused");
          return Step::kFatal;
        }
        winners.emplace_back(d);
      }
      if (*last) {
        link_.MarkProgress();
        return Step::kDone;
      }
      s = link_.ReadMore(reply);
    }
    if (s == Step::kRetry) {
      link_.MarkProgress();  // the server answered until now; give it the full timeout again
      continue;
    }
    if (s != Step::kDone) return s;
    if (reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
      Step e = HandleErrorReply(link_, config_, reply.payload, "consulta_ganadores");
      if (e == Step::kRetry) {
        link_.MarkProgress();
        if (!link_.Sleep(kRetryPause)) return Step::kCancelled;
        continue;
      }
      return e;
    }
    link_.Drop(fmt::format("unexpected {} in reply to WINNERS_QUERY", MessageTypeName(reply.type)));
    return Step::kFatal;
  }
}

int Agency::RunLottery() {
  const std::string path = config_.DatasetPath();
  // Checked before connecting: a dataset that cannot be read is this
  // agency's own problem, whether or not a server is there.
  auto dataset = OpenDataset(path);
  if (!dataset) {
    Log(LogLevel::kError, "dataset", Outcome::kFail, "client_id: {} | file: {} | error: {}",
        config_.id, path, dataset.error().message);
    return kExitNoInput;
  }
  UniqueFd& file = dataset->fd;
  if (Step s = link_.Ensure(LinkHello::kSend); s != Step::kDone) return Stop(s);
  // An agency that already said FINISHED this round (a run that was
  // interrupted while it waited for the draw) has nothing left to send,
  // whatever batch size this run would cut the dataset into.
  const bool already_finished = link_.welcome().finished;
  if (already_finished) {
    Log(LogLevel::kInfo, "dataset", Outcome::kSuccess,
        "client_id: {} | file: {} | detail: this agency already said FINISHED this round ({} "
        "bets stored); collecting its winners",
        config_.id, path, link_.welcome().bets_stored);
  }

  DatasetRows rows(file.get(), config_.id, Today());
  // A new process resumes after the bets the server holds, whatever batches
  // an earlier process cut them into (agency/resume.h).
  if (!already_finished) {
    if (int code = ResumeAfterStored(rows, link_.welcome(), config_.id, path); code != kExitOk) {
      link_.Close("the dataset does not match the stored bets");
      return code;
    }
  }
  sender_.StartAt(link_.welcome().last_seq + 1, link_.welcome().bets_stored);
  std::optional<BetBatchEncoder> batch;

  // The live progress line, on a terminal (or log.progress = always).
  ProgressLine progress(config_.progress == ProgressMode::kAlways ||
                            (config_.progress == ProgressMode::kAuto && ::isatty(STDERR_FILENO)),
                        config_.id);
  AgencyProgress shown;
  shown.bytes_total = dataset->size;
  auto report = [&] {
    if (!progress.enabled()) return;
    const off_t at = ::lseek(file.get(), 0, SEEK_CUR);  // what the reader has taken in
    if (at > 0) shown.bytes_read = static_cast<std::uint64_t>(at);
    shown.bets_acked = sender_.bets_acked();
    shown.reconnects = link_.sessions() > 0 ? link_.sessions() - 1 : 0;
    progress.Update(shown);
  };
  sender_.OnAck(report);
  // `report` refers to this frame's locals: the sender forgets it on every way out.
  struct ForgetReport {
    BetSender& sender;
    ~ForgetReport() { sender.OnAck(nullptr); }
  } forget{sender_};

  // Hands the batch being built to the window (which may wait for acks).
  auto flush = [&]() -> Step {
    if (!batch || batch->count() == 0) return Step::kDone;
    const std::uint16_t count = batch->count();
    batch.reset();
    shown.bets_sent += count;
    report();
    return sender_.Submit(count);
  };

  for (std::uint64_t records = 0; !already_finished; ++records) {
    if (records % kRecordsPerSignalCheck == kRecordsPerSignalCheck - 1 && signals_.Pending()) {
      return Stop(Step::kCancelled);
    }
    // No whole line buffered, and a read may wait for a pipe's writer: send what is built.
    if (dataset->streamed && rows.MayRead()) {
      if (Step s = sender_.Flush(); s != Step::kDone) return Stop(s);
    }
    std::string_view row;
    const RowRead got = rows.Next(row);
    if (got == RowRead::kSkipped) continue;
    if (got == RowRead::kEnd) break;
    if (got == RowRead::kError) {
      Log(LogLevel::kError, "dataset", Outcome::kFail, "client_id: {} | file: {} | error: {}",
          config_.id, path, rows.error().message);
      return kExitNoInput;
    }
    if (batch && (batch->count() >= config_.batch_max_amount || !batch->FitsRow(row.size()))) {
      if (Step s = flush(); s != Step::kDone) return Stop(s);
    }
    if (!batch) batch.emplace(sender_.NextFrame(), sender_.next_seq());
    batch->AddRow(row);
  }
  if (Step s = flush(); s != Step::kDone) return Stop(s);
  if (Step s = sender_.Drain(); s != Step::kDone) return Stop(s);
  report();
  progress.Finish();
  file.Reset();
  Log(LogLevel::kInfo, "dataset", Outcome::kSuccess,
      "client_id: {} | file: {} | batches: {} | lineas_omitidas: {} | apuestas_rechazadas: {}",
      config_.id, path, sender_.batches_acked(), rows.lines_skipped(), sender_.bets_rejected());
  Log(LogLevel::kInfo, "batches_summary", Outcome::kSuccess,
      "client_id: {} | batches: {} | window: {} | ack_p50_us: {} | ack_p99_us: {}", config_.id,
      sender_.ack_latency().count(), sender_.window_capacity(),
      sender_.ack_latency().PercentileMicros(0.5), sender_.ack_latency().PercentileMicros(0.99));

  std::uint64_t stored = 0;
  if (Step s = SendFinished(stored); s != Step::kDone) return Stop(s);
  Log(LogLevel::kInfo, "apuestas_enviadas", Outcome::kSuccess, "client_id: {} | cantidad: {}",
      config_.id, stored);
  // The draw waits for every agency: say so, not nothing.
  Log(LogLevel::kInfo, "waiting_for_draw", Outcome::kInProgress, "client_id: {}", config_.id);

  std::vector<std::string> winners;
  if (Step s = QueryWinners(winners, stored); s != Step::kDone) return Stop(s);
  std::string out;
  for (const std::string& doc : winners) {
    out += doc;
    out += '\n';
  }
  if (auto written = WriteAll(STDOUT_FILENO, out, "stdout"); !written) {
    Log(LogLevel::kError, "consulta_ganadores", Outcome::kFail, "error: {}", written.error().message);
  }
  Log(LogLevel::kInfo, "consulta_ganadores", Outcome::kSuccess, "cant_ganadores: {}",
      winners.size());
  Log(LogLevel::kInfo, "resource_usage", Outcome::kSuccess, "client_id: {} | peak_rss_kib: {}",
      config_.id, PeakRssKib().value_or(0));
  link_.Close("round complete");
  if (sender_.bets_rejected() > 0) {
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail,
        "client_id: {} | error: the server rejected {} bets", config_.id, sender_.bets_rejected());
    return kExitDataErr;
  }
  return kExitOk;
}

int Agency::RunEcho() {
  for (int k = 1; k <= config_.loop_amount; ++k) {
    std::string msg = fmt::format("[CLIENT {}] Message N°{}", config_.id, k);
    std::string frame;
    EncodeEcho(frame, msg);
    link_.MarkProgress();  // connect_timeout bounds each message's wait for its reply
    while (true) {
      if (Step s = link_.Ensure(LinkHello::kSkip); s != Step::kDone) return Stop(s);
      Frame reply;
      Step s = link_.Exchange(frame, reply, std::chrono::duration_cast<Millis>(config_.read_timeout));
      if (s == Step::kDone && reply.type == static_cast<std::uint8_t>(MessageType::kError)) {
        s = HandleErrorReply(link_, config_, reply.payload, "receive_message");
      }
      if (s == Step::kRetry && link_.GaveUp()) return Stop(Step::kUnavailable);
      if (s == Step::kRetry) continue;
      if (s != Step::kDone) return Stop(s);
      if (reply.type != static_cast<std::uint8_t>(MessageType::kEchoReply) || reply.payload != msg) {
        Log(LogLevel::kError, "receive_message", Outcome::kFail,
            "client_id: {} | error: the reply does not echo the message", config_.id);
        return kExitProtocol;
      }
      link_.MarkProgress();
      Log(LogLevel::kInfo, "receive_message", Outcome::kSuccess, "client_id: {} | msg: {}",
          config_.id, reply.payload);
      break;
    }
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
    Log(LogLevel::kError, "apuesta_enviada", Outcome::kFail, "client_id: {} | error: {}", config_.id,
        *reason);
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

}  // namespace

int RunAgency(const AgencyConfig& config, const std::map<std::string, std::string>& env) {
  SetLogLevel(config.log_level);
  ::signal(SIGPIPE, SIG_IGN);
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "client_id: {} | server_address: {} | loop_amount: {} | loop_period: {} | log_level: {} | "
      "batch_max_amount: {} | batch_window: {} | mode: {} | dataset: {}",
      config.id, config.server_address, config.loop_amount, FormatDuration(config.loop_period),
      LogLevelName(config.log_level), config.batch_max_amount, config.batch_window,
      AgencyModeName(config.mode),
      config.DatasetPath());
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
