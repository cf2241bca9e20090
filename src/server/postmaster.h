// The Postmaster is the server's parent process once it is set up: it
// accepts, forks one worker per connection (refusing beyond
// server.max_connections without a fork), reaps and accounts its workers,
// re-reads its configuration on SIGHUP, reports to the service manager, and
// shuts everything down on SIGTERM or SIGINT. It never reads a bet, and it
// touches the shared segment only through shm/'s named operations.
//
// It owns, for its whole life: the TLS context (replaced on SIGHUP), the listening socket, the
// signal descriptor, the shared segment, the winners file and the set of live workers. The launch
// description must outlive it.
#pragma once

#include <poll.h>
#include <sys/resource.h>
#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "common/signals.h"
#include "common/unique_fd.h"
#include "server/control_socket.h"
#include "server/metrics_endpoint.h"
#include "server/pending_room.h"
#include "server/pg_backend.h"
#include "server/server_config.h"
#include "server/service_notifier.h"
#include "server/startup.h"
#include "server/worker_set.h"
#include "shm/shared_state.h"
#include "tls/tls_context.h"

namespace lottery {

class Postmaster {
 public:
  Postmaster(const ServerConfig& config, const ServerLaunch& launch, std::optional<TlsContext> tls,
             ServiceNotifier notifier, SignalFd signals, SharedSegment shared, UniqueFd winners,
             UniqueFd listener, std::string listening_on, std::optional<MetricsEndpoint> metrics,
             ControlEndpoint control, PgBackend* pg)
      : config_(config),
        launch_(launch),
        tls_(std::move(tls)),
        notifier_(std::move(notifier)),
        signals_(std::move(signals)),
        shared_(std::move(shared)),
        winners_(std::move(winners)),
        listener_(std::move(listener)),
        listening_on_(std::move(listening_on)),
        metrics_(std::move(metrics)),
        control_(std::move(control)),
        pg_(pg) {}

  int Run();

 private:
  using Clock = std::chrono::steady_clock;

  void Accept();
  // Makes room for a new connection from `peer`, evicting the oldest
  // unidentified one when needed (server/pending_room.h); false when it was
  // refused (TOO_MANY_CONNECTIONS sent).
  bool Admit(UniqueFd& connection, const std::string& peer);
  // Answers TOO_MANY_CONNECTIONS saying `why`, and counts it for the log
  // and the metrics.
  void Refuse(UniqueFd connection, const std::string& peer, Refusal reason, std::string why);
  // One warning per second at most, with the count refused since the last.
  void LogRefusals(Clock::time_point now);
  void ReapWorkers();
  void OnWorkerExit(pid_t pid, int status, const rusage& usage);
  void Reload();
  // Closes betting (draw.deadline passed, or SIGUSR2): the draw runs over
  // the agencies that finished. Logged once.
  void CloseBettingNow(const char* reason);
  // The reloadable settings of config_, for the workers (shm PublishSettings).
  void PublishRuntimeSettings();
  void Shutdown(int signal);
  // Service manager: STATUS= when the round moved, WATCHDOG=1 when due.
  void ReportStatus();
  void Tick();
  int PollTimeoutMs() const;
  void Notify(const Status& sent);
  // READY=1 with the round's status: the end of every reload, kept or not.
  void NotifyReady();
  // Run's steps: committers, READY=1 and the watchdog before the loop ...
  int Start();
  // ... then one function per event: the signals that arrived (an exit code
  // when one ends the server) ...
  std::optional<int> OnSignals();
  // ... and the PostgreSQL lease's descriptor (sets lease_lost_).
  void WatchLease(const pollfd& lease);
  // The body of GET /metrics (server/metrics_exposition.h).
  std::string MetricsPage() const;
  // lotteryctl's commands (server/postmaster_control.cc): the reply to one
  // request on the control socket.
  ControlReply OnControl(const ControlRequest& request, const ControlPeer& peer);
  ControlReply ControlStatus();
  ControlReply ControlClose();
  // Archives the drawn round and opens the next (storage/rounds.h); the
  // live workers, which hold the archived files open, are told to end.
  ControlReply ControlOpen();
  // The PostgreSQL backend's close and open, through a committer.
  Result<BettingClosure> ClosePgBettingNow();
  Result<std::uint64_t> OpenNextPgRoundNow();
  // draw.deadline from now, when it is set.
  void ArmBettingDeadline();

  ServerConfig config_;  // the running configuration; a reload updates it
  const ServerLaunch& launch_;
  // Built from files, never used by the parent itself: the workers forked
  // after a reload run their handshakes with the new one.
  std::optional<TlsContext> tls_;
  ServiceNotifier notifier_;
  SignalFd signals_;
  SharedSegment shared_;
  UniqueFd winners_;
  UniqueFd listener_;
  std::string listening_on_;
  // server.metrics_address: served from this loop, never blocking it.
  std::optional<MetricsEndpoint> metrics_;
  // server.control_socket: lotteryctl's requests, served from this loop too.
  ControlEndpoint control_;
  // storage.backend = "postgresql": the lease and the committers; nullptr
  // on the file backend. Owned by RunServer.
  PgBackend* pg_;
  // A committer was fenced or the lease was lost: the server stops (75).
  bool lease_lost_ = false;
  WorkerSet workers_;
  PendingRoom room_;  // accept order and source of the workers, for eviction

  std::string last_status_;
  Clock::time_point next_status_{};
  Clock::time_point next_watchdog_{};
  bool notify_failed_ = false;
  // Refused connections are logged at most once a second, with a count.
  std::uint64_t refused_unlogged_ = 0;
  std::string last_refused_peer_;
  std::uint64_t evicted_unlogged_ = 0;  // evictions, logged like refusals
  const char* last_eviction_reason_ = "";
  long worker_peak_rss_kib_ = 0;  // largest ru_maxrss of a reaped worker
  std::uint64_t workers_reaped_ = 0;
  Clock::time_point next_refusal_log_{};
  std::optional<Clock::time_point> betting_deadline_;  // draw.deadline, while open
};

}  // namespace lottery
