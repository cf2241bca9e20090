// The agency's session with the server: one object per run, in one of
// three modes (RunLottery, RunEcho, RunBet). Internal to agency/; its
// member functions are split by mode: agency.cc (echo, bet, and the start
// that picks the mode), agency_lottery.cc (a dataset's bets, FINISHED and
// the winners). Every request goes through Request, the one loop that
// connects, exchanges, and retries what can be retried.
//
// The session owns its signal descriptor, the link to the server and the
// sender of batches over it; the config and TLS context must outlive it.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "agency/agency_config.h"
#include "agency/bet_sender.h"
#include "agency/dataset_reader.h"
#include "agency/progress_line.h"
#include "agency/server_link.h"
#include "common/log.h"
#include "common/net.h"
#include "common/signals.h"
#include "wire/frame_io.h"
#include "wire/protocol.h"

namespace lottery {

// The live progress line, on a terminal (or log.progress = always), redrawn
// on every ack and every batch handed to the window. Registered with the
// sender for its lifetime only: the sender forgets it on every way out.
class DatasetProgress {
 public:
  DatasetProgress(const AgencyConfig& config, const DatasetFile& dataset, BetSender& sender,
                  const ServerLink& link)
      : line_(config.progress == ProgressMode::kAlways ||
                  (config.progress == ProgressMode::kAuto && ::isatty(STDERR_FILENO)),
              config.id),
        fd_(dataset.fd.get()),
        sender_(sender),
        link_(link) {
    shown_.bytes_total = dataset.size;
    sender_.OnAck([this] { Report(); });
  }
  ~DatasetProgress() { sender_.OnAck(nullptr); }
  DatasetProgress(const DatasetProgress&) = delete;
  DatasetProgress& operator=(const DatasetProgress&) = delete;

  void Report() {
    if (!line_.enabled()) return;
    const off_t at = ::lseek(fd_, 0, SEEK_CUR);  // what the reader has taken in
    if (at > 0) shown_.bytes_read = static_cast<std::uint64_t>(at);
    shown_.bets_acked = sender_.bets_acked();
    shown_.reconnects = link_.sessions() > 0 ? link_.sessions() - 1 : 0;
    line_.Update(shown_);
  }
  void Sent(std::uint16_t count) {
    shown_.bets_sent += count;
    Report();
  }
  void Finish() { line_.Finish(); }

 private:
  ProgressLine line_;
  AgencyProgress shown_;
  int fd_;
  BetSender& sender_;
  const ServerLink& link_;
};

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
  // Reads the WINNERS frames of one reply into `winners`; returns kDone
  // with `reply` the last of them, or with the first reply of another type.
  Step ReadWinners(Frame& reply, std::vector<std::string>& winners, std::uint64_t max_winners);
  // The one request loop of the agency's requests: `connect`, `exchange`
  // the request for a reply, interpret an ERROR reply (HandleErrorReply,
  // logged as `during`), and on a dropped connection or a transient ERROR
  // ask `retry` whether to go again (nullopt) or stop (that step). Any
  // other reply goes to `accept`, whose step ends the request.
  template <typename Connect, typename Exchange, typename Accept, typename Retry>
  Step Request(std::string_view during, Connect connect, Exchange exchange, Accept accept,
               Retry retry);
  // A reply the request does not expect: the server broke the protocol.
  Step Unexpected(const Frame& reply, std::string_view request);
  // One ECHO of `msg` (encoded in `frame`) and its reply.
  Step Echo(const std::string& frame, std::string_view msg);
  // RunLottery's steps. Each returns the exit code when the run ends there,
  // nullopt to go on.
  // Sends the dataset's bets after those the server holds and waits for
  // every ack.
  std::optional<int> SendDataset(DatasetFile& dataset, const std::string& path);
  std::optional<int> SendRows(DatasetRows& rows, DatasetProgress& progress, bool streamed,
                              const std::string& path);
  void LogDatasetSummary(const DatasetRows& rows, const std::string& path);
  // Prints the winners on stdout, one document a line.
  void PrintWinners(const std::vector<std::string>& winners);
  int Stop(Step s);

  const AgencyConfig& config_;
  SignalFd signals_;
  ServerLink link_;
  BetSender sender_;
};

template <typename Connect, typename Exchange, typename Accept, typename Retry>
Step Agency::Request(std::string_view during, Connect connect, Exchange exchange, Accept accept,
                     Retry retry) {
  while (true) {
    if (Step s = connect(); s != Step::kDone) return s;
    Frame reply;
    Step s = exchange(reply);
    const bool error_reply =
        s == Step::kDone && reply.type == static_cast<std::uint8_t>(MessageType::kError);
    if (error_reply) s = HandleErrorReply(link_, config_, reply.payload, during);
    if (s == Step::kRetry) {
      if (std::optional<Step> stop = retry(error_reply)) return *stop;
      continue;
    }
    // HandleErrorReply never answers kDone: an ERROR ends here.
    if (s != Step::kDone || error_reply) return s;
    return accept(reply);
  }
}

}  // namespace lottery
