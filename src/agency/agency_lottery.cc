#include "agency/agency_session.h"

#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "agency/resume.h"
#include "common/exit_codes.h"
#include "common/file_io.h"
#include "common/log.h"
#include "common/peak_rss.h"
#include "wire/bet.h"
#include "wire/bet_row.h"
#include "wire/protocol.h"

namespace lottery {
namespace {

// Between two looks at the signal descriptor while records are read:
// sending notices signals, this covers long runs of skipped lines.
constexpr std::uint64_t kRecordsPerSignalCheck = 4096;

}  // namespace

Step Agency::SendFinished(std::uint64_t& stored) {
  std::string frame;
  EncodeFinished(frame);
  const Millis timeout = std::chrono::duration_cast<Millis>(config_.read_timeout);
  return Request(
      "finished", [&] { return sender_.Connect(); },
      [&](Frame& reply) { return link_.Exchange(frame, reply, timeout); },
      [&](const Frame& reply) {
        if (reply.type != static_cast<std::uint8_t>(MessageType::kFinishedAck)) {
          return Unexpected(reply, "FINISHED");
        }
        auto n = DecodeFinishedAck(reply.payload);
        if (!n) {
          link_.Drop(n.error().message);
          return Step::kFatal;
        }
        stored = *n;
        link_.MarkFinished();
        link_.MarkProgress();
        return Step::kDone;
      },
      [](bool) { return std::optional<Step>(); });
}

Step Agency::QueryWinners(std::vector<std::string>& winners, std::uint64_t max_winners) {
  std::string frame;
  EncodeWinnersQuery(frame);
  auto connect = [&] {
    if (Step s = sender_.Connect(); s != Step::kDone) return s;
    if (!link_.welcome().finished) {
      // A restarted server that lost FINISHED: say it again first.
      std::uint64_t stored = 0;
      if (Step s = SendFinished(stored); s != Step::kDone) return s;
    }
    winners.clear();
    return Step::kDone;
  };
  auto exchange = [&](Frame& reply) {
    // The draw waits for every agency: no bound on this wait.
    Step s = link_.Exchange(frame, reply, std::nullopt);
    return s == Step::kDone ? ReadWinners(reply, winners, max_winners) : s;
  };
  auto accept = [&](const Frame& reply) {
    if (reply.type != static_cast<std::uint8_t>(MessageType::kWinners)) {
      return Unexpected(reply, "WINNERS_QUERY");
    }
    link_.MarkProgress();
    return Step::kDone;
  };
  auto retry = [&](bool error_reply) -> std::optional<Step> {
    link_.MarkProgress();  // the server answered until now; give it the full timeout again
    if (error_reply && !link_.Sleep(kRetryPause)) return Step::kCancelled;
    return std::nullopt;
  };
  return Request("consulta_ganadores", connect, exchange, accept, retry);
}

Step Agency::ReadWinners(Frame& reply, std::vector<std::string>& winners,
                         std::uint64_t max_winners) {
  Step s = Step::kDone;
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
        Log(LogLevel::kError, "consulta_ganadores", Outcome::kFail, "client_id: {} | error: {}",
            config_.id,
            digits ? fmt::format("the server sent more winners than the {} bets it stored",
                                 max_winners)
                   : std::string("the server sent a winner that is not a document of 1 to 10 "
                                 "digits"));
        link_.Drop("winners list refused");
        return Step::kFatal;
      }
      winners.emplace_back(d);
    }
    if (*last) return Step::kDone;
    s = link_.ReadMore(reply);
  }
  return s;
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
  if (Step s = link_.Ensure(LinkHello::kSend); s != Step::kDone) return Stop(s);
  if (std::optional<int> code = SendDataset(*dataset, path)) return *code;
  std::uint64_t stored = 0;
  if (Step s = SendFinished(stored); s != Step::kDone) return Stop(s);
  Log(LogLevel::kInfo, "apuestas_enviadas", Outcome::kSuccess, "client_id: {} | cantidad: {}",
      config_.id, stored);
  // The draw waits for every agency: say so, not nothing.
  Log(LogLevel::kInfo, "waiting_for_draw", Outcome::kInProgress, "client_id: {}", config_.id);
  std::vector<std::string> winners;
  if (Step s = QueryWinners(winners, stored); s != Step::kDone) return Stop(s);
  PrintWinners(winners);
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

std::optional<int> Agency::SendDataset(DatasetFile& dataset, const std::string& path) {
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
  DatasetRows rows(dataset.fd.get(), config_.id, Today());
  // A new process resumes after the bets the server holds, whatever batches
  // an earlier process cut them into (agency/resume.h).
  if (!already_finished) {
    if (int code = ResumeAfterStored(rows, link_.welcome(), config_.id, path); code != kExitOk) {
      link_.Close("the dataset does not match the stored bets");
      return code;
    }
  }
  sender_.StartAt(link_.welcome().last_seq + 1, link_.welcome().bets_stored);
  DatasetProgress progress(config_, dataset, sender_, link_);
  if (!already_finished) {
    if (std::optional<int> code = SendRows(rows, progress, dataset.streamed, path)) return code;
  }
  if (Step s = sender_.Drain(); s != Step::kDone) return Stop(s);
  progress.Report();
  progress.Finish();
  dataset.fd.Reset();
  LogDatasetSummary(rows, path);
  return std::nullopt;
}

std::optional<int> Agency::SendRows(DatasetRows& rows, DatasetProgress& progress, bool streamed,
                                    const std::string& path) {
  std::optional<BetBatchEncoder> batch;
  // Hands the batch being built to the window (which may wait for acks).
  auto flush = [&]() -> Step {
    if (!batch || batch->count() == 0) return Step::kDone;
    const std::uint16_t count = batch->count();
    batch.reset();
    progress.Sent(count);
    return sender_.Submit(count);
  };
  for (std::uint64_t records = 0;; ++records) {
    if (records % kRecordsPerSignalCheck == kRecordsPerSignalCheck - 1 && signals_.Pending()) {
      return Stop(Step::kCancelled);
    }
    // No whole line buffered, and a read may wait for a pipe's writer: send what is built.
    if (streamed && rows.MayRead()) {
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
  return std::nullopt;
}

void Agency::LogDatasetSummary(const DatasetRows& rows, const std::string& path) {
  Log(LogLevel::kInfo, "dataset", Outcome::kSuccess,
      "client_id: {} | file: {} | batches: {} | lineas_omitidas: {} | apuestas_rechazadas: {}",
      config_.id, path, sender_.batches_acked(), rows.lines_skipped(), sender_.bets_rejected());
  Log(LogLevel::kInfo, "batches_summary", Outcome::kSuccess,
      "client_id: {} | batches: {} | window: {} | ack_p50_us: {} | ack_p99_us: {}", config_.id,
      sender_.ack_latency().count(), sender_.window_capacity(),
      sender_.ack_latency().PercentileMicros(0.5), sender_.ack_latency().PercentileMicros(0.99));
}

void Agency::PrintWinners(const std::vector<std::string>& winners) {
  std::string out;
  for (const std::string& doc : winners) {
    out += doc;
    out += '\n';
  }
  if (auto written = WriteAll(STDOUT_FILENO, out, "stdout"); !written) {
    Log(LogLevel::kError, "consulta_ganadores", Outcome::kFail, "error: {}",
        written.error().message);
  }
  Log(LogLevel::kInfo, "consulta_ganadores", Outcome::kSuccess, "cant_ganadores: {}",
      winners.size());
}

}  // namespace lottery
