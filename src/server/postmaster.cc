#include "server/postmaster.h"

#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "common/net.h"
#include "common/peak_rss.h"
#include "server/metrics_exposition.h"
#include "server/round_status.h"
#include "server/server_tls.h"
#include "wire/protocol.h"
#include "worker/worker.h"

namespace lottery {
namespace {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exit_code: {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("signal: {}",
                       sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
  }
  return "status: unknown";
}

WorkerOptions WorkerOptionsFrom(const ServerConfig& config, const std::optional<TlsContext>& tls,
                                const PgBackend* pg) {
  return WorkerOptions{config.storage_path,  pg ? pg->committer_address() : std::string(),
                       config.storage_sync,  config.winning_number,
                       config.read_timeout,  config.hello_timeout,
                       config.idle_timeout,  config.log_level,
                       tls ? &*tls : nullptr};
}

}  // namespace

constexpr auto kStatusRefresh = std::chrono::seconds(1);
// After accept() failed for want of descriptors or memory: 100 ms.
constexpr useconds_t kAcceptFailurePauseUs = 100'000;

int Postmaster::Run() {
  if (int code = Start(); code != kExitOk) return code;
  while (true) {
    std::vector<pollfd> fds = {{signals_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    if (metrics_) metrics_->AddPollFds(fds);
    const std::size_t control_first = fds.size();
    control_.AddPollFds(fds);
    const std::size_t lease_at = fds.size();
    if (pg_) fds.push_back({pg_->lease_fd(), POLLIN, 0});
    int rc = ::poll(fds.data(), fds.size(), PollTimeoutMs());
    if (rc < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, "poll", Outcome::kFail, "error: {}", std::strerror(errno));
      Shutdown(0);
      return kExitOsErr;
    }
    if (fds[0].revents & POLLIN) {
      if (auto code = OnSignals()) return *code;
    }
    if (pg_) WatchLease(fds[lease_at]);
    if (lease_lost_) {
      Shutdown(0);
      return kExitTempFail;
    }
    if (fds[1].revents & POLLIN) Accept();
    if (metrics_) metrics_->OnPoll(fds, 2, [this] { return MetricsPage(); });
    control_.OnPoll(fds, control_first, [this](const ControlRequest& r, const ControlPeer& p) {
      return OnControl(r, p);
    });
    Tick();
  }
}

int Postmaster::Start() {
  PublishRuntimeSettings();
  if (pg_) {
    // Committers hold none of the parent's sockets.
    Status started = pg_->StartCommitters([this] {
      listener_.Reset();
      signals_.Close();
      if (metrics_) metrics_->Close();
      control_.Close();
    });
    if (!started) {
      Log(LogLevel::kError, "committer", Outcome::kFail, "error: {}", started.error().message);
      return kExitOsErr;
    }
  }
  last_status_ = FormatRoundStatus(ReadRoundSummary(shared_.state()));
  // Ready only now: the socket is listening, storage is recovered and the
  // shared state exists (the socket was bound before recovery, so agencies
  // that connected meanwhile wait in its backlog).
  Notify(notifier_.Ready(fmt::format("listening on {}; {}", listening_on_, last_status_)));
  Log(LogLevel::kInfo, "ready", Outcome::kSuccess, "listening: {} | status: {}", listening_on_,
      last_status_);
  next_status_ = Clock::now() + kStatusRefresh;
  ArmBettingDeadline();
  if (auto interval = notifier_.watchdog_interval()) {
    Notify(notifier_.WatchdogPing());
    next_watchdog_ = Clock::now() + *interval / 2;
    Log(LogLevel::kInfo, "watchdog", Outcome::kSuccess, "interval: {} | ping_every: {}",
        FormatDuration(*interval), FormatDuration(*interval / 2));
  }
  return kExitOk;
}

std::optional<int> Postmaster::OnSignals() {
  while (auto sig = signals_.TakePending()) {
    if (*sig == SIGCHLD) {
      ReapWorkers();
    } else if (*sig == SIGTERM || *sig == SIGINT) {
      Shutdown(*sig);
      return kExitOk;
    } else if (*sig == SIGHUP) {
      Reload();
    } else if (*sig == SIGUSR2) {
      CloseBettingNow("operator (SIGUSR2)");
    }
  }
  return std::nullopt;
}

void Postmaster::WatchLease(const pollfd& lease) {
  if ((lease.revents != 0 || lease.fd < 0) && !pg_->LeaseAlive()) {
    Log(LogLevel::kError, "storage", Outcome::kFail,
        "backend: postgresql | error: the lease session was lost; another server may take "
        "over, so this one stops");
    lease_lost_ = true;
  }
}

int Postmaster::PollTimeoutMs() const {
  std::optional<Clock::time_point> wake;
  if (notifier_.enabled()) {
    wake = next_status_;
    if (notifier_.watchdog_interval()) wake = std::min(*wake, next_watchdog_);
  }
  if (betting_deadline_) wake = wake ? std::min(*wake, *betting_deadline_) : *betting_deadline_;
  if (auto scrape = metrics_ ? metrics_->NextDeadline() : std::nullopt) {
    wake = wake ? std::min(*wake, *scrape) : *scrape;
  }
  if (auto control = control_.NextDeadline()) wake = wake ? std::min(*wake, *control) : *control;
  // Refusals counted but not logged yet are logged when their second is up.
  if (refused_unlogged_ + evicted_unlogged_ > 0) {
    wake = wake ? std::min(*wake, next_refusal_log_) : next_refusal_log_;
  }
  if (!wake) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*wake - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 60000));
}

void Postmaster::Tick() {
  auto now = Clock::now();
  if (betting_deadline_ && now >= *betting_deadline_) CloseBettingNow("draw.deadline");
  if (refused_unlogged_ + evicted_unlogged_ > 0 && now >= next_refusal_log_) LogRefusals(now);
  if (!notifier_.enabled()) return;
  if (auto interval = notifier_.watchdog_interval(); interval && now >= next_watchdog_) {
    Notify(notifier_.WatchdogPing());
    next_watchdog_ = now + *interval / 2;
  }
  if (now >= next_status_) {
    ReportStatus();
    next_status_ = now + kStatusRefresh;
  }
}

std::string Postmaster::MetricsPage() const {
  MetricsContext context;
  context.agencies = static_cast<std::uint32_t>(config_.agencies);
  context.workers = workers_.size();
  context.version = LOTTERY_VERSION;
  context.tls_mode = config_.tls.mode == TlsMode::kOff ? "off" : "required";
  context.sync_mode = SyncModeName(config_.storage_sync);
  context.round_state = static_cast<std::uint32_t>(ReadRoundReport(shared_.state()).state);
  return RenderMetrics(shared_.state().metrics, context);
}

void Postmaster::ReportStatus() {
  if (!notifier_.enabled()) return;
  std::string status = FormatRoundStatus(ReadRoundSummary(shared_.state()));
  if (status == last_status_) return;
  last_status_ = status;
  Notify(notifier_.SetStatus(status));
}

void Postmaster::Notify(const Status& sent) {
  if (sent) {
    notify_failed_ = false;
    return;
  }
  // Once per failure streak: a manager that went away must not flood the log.
  if (!notify_failed_) {
    Log(LogLevel::kWarning, "notify", Outcome::kFail, "backend: {} | error: {}",
        NotifyBackendName(notifier_.backend()), sent.error().message);
  }
  notify_failed_ = true;
}

void Postmaster::Accept() {
  int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
      Log(LogLevel::kWarning, "accept", Outcome::kFail, "error: {}", std::strerror(errno));
      // Out of descriptors or memory: do not spin at full speed.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        ::usleep(kAcceptFailurePauseUs);
      }
    }
    return;
  }
  UniqueFd connection(fd);
  std::string peer = PeerAddress(connection.get());
  if (!Admit(connection, peer)) return;
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) {
    Log(LogLevel::kError, "fork", Outcome::kFail, "ip: {} | error: {}", peer, std::strerror(errno));
    return;  // The connection closes; the agency retries.
  }
  if (pid == 0) {
    // Worker: drop what belongs to the parent, serve, and never return into
    // the parent's stack (no exception crosses the fork either).
    listener_.Reset();
    signals_.Close();
    if (metrics_) metrics_->Close();
    control_.Close();
    // A worker does not outlive its parent: it holds the data lock
    // (storage/data_lock.h), and a restarted server waits for it. SIGTERM
    // stays blocked, so the worker's own signal descriptor sees it.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::kill(::getpid(), SIGTERM);
    int code = kExitSoftware;
    try {
      code = RunWorker(std::move(connection), WorkerOptionsFrom(config_, tls_, pg_), shared_,
                       winners_.get());
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "worker", Outcome::kFail, "error: {}", e.what());
    } catch (...) {
      Log(LogLevel::kError, "worker", Outcome::kFail, "error: unknown exception");
    }
    ::_exit(code);
  }
  workers_.Add(pid);
  room_.Add(pid, peer);
  shared_.state().metrics.connections_accepted.fetch_add(1, std::memory_order_relaxed);
  Log(LogLevel::kDebug, "accept", Outcome::kSuccess, "ip: {} | worker_pid: {} | workers: {}", peer,
      pid, workers_.size());
}

void Postmaster::ReapWorkers() {
  while (true) {
    int status = 0;
    rusage usage{};
    pid_t pid = ::wait4(-1, &status, WNOHANG, &usage);
    if (pid <= 0) return;
    OnWorkerExit(pid, status, usage);
  }
}

void Postmaster::OnWorkerExit(pid_t pid, int status, const rusage& usage) {
  bool fenced = false;
  if (pg_ && pg_->OnChildExit(pid, status, fenced)) {
    if (fenced) {
      Log(LogLevel::kError, "storage", Outcome::kFail,
          "backend: postgresql | error: fenced: another server took the lease over");
      lease_lost_ = true;
    }
    return;
  }
  // As PID 1 we also reap orphans we never forked; only our workers matter.
  if (!workers_.Remove(pid)) return;
  const bool evicted = room_.WasEvicted(pid);
  room_.Forget(pid);
  worker_peak_rss_kib_ = std::max<long>(worker_peak_rss_kib_, usage.ru_maxrss);
  ++workers_reaped_;
  // An evicted worker's SIGKILL is the parent's doing: counted, not a warning.
  bool clean = evicted || (WIFEXITED(status) && WEXITSTATUS(status) == 0);
  // A drawer that died has its draw reset: a waiting worker takes it over.
  const std::uint32_t freed_agency = ReleaseWorker(shared_.state(), pid).agency;
  Log(clean ? LogLevel::kDebug : LogLevel::kWarning, "worker_exit",
      clean ? Outcome::kSuccess : Outcome::kFail, "worker_pid: {} | {} | agency: {}", pid,
      DescribeWaitStatus(status), freed_agency);
}

void Postmaster::Shutdown(int signal) {
  if (refused_unlogged_ + evicted_unlogged_ > 0) LogRefusals(Clock::now());
  Notify(notifier_.Stopping(
      fmt::format("shutting down on {}: stopping {} workers",
                  signal ? fmt::format("SIG{}", sigabbrev_np(signal)) : std::string("an error"),
                  workers_.size())));
  Log(LogLevel::kInfo, "shutdown", Outcome::kInProgress, "signal: {} | workers: {}",
      signal ? sigabbrev_np(signal) : "none", workers_.size());
  listener_.Reset();
  Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: listening_socket");
  Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: control_socket | path: {}",
      control_.path());
  control_.Remove();
  BeginShutdown(shared_.state());
  workers_.SignalAll(SIGTERM);
  const auto deadline =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(config_.shutdown_timeout);
  while (!workers_.empty() && Clock::now() < deadline) {
    ReapWorkers();
    if (workers_.empty()) break;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd p{signals_.fd(), POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(std::max<long long>(1, std::min<long long>(left.count(), 100))));
    while (auto sig = signals_.TakePending()) {
      (void)sig;  // SIGCHLD wakes us; a second SIGTERM changes nothing.
    }
  }
  if (!workers_.empty()) {
    Log(LogLevel::kWarning, "shutdown", Outcome::kInProgress,
        "detail: {} workers did not stop in {}; killing them", workers_.size(),
        FormatDuration(config_.shutdown_timeout));
    workers_.SignalAll(SIGKILL);
    while (!workers_.empty()) {
      int status = 0;
      rusage usage{};
      pid_t pid = ::wait4(-1, &status, 0, &usage);
      if (pid < 0) break;
      OnWorkerExit(pid, status, usage);
    }
  }
  Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: workers | detail: all reaped");
  if (pg_) pg_->StopCommitters();
  // Peak resident sizes, for the benchmark: they must not grow with the
  // number of bets (docs/PERFORMANCE.md). A worker never execs, so its
  // ru_maxrss is its own.
  Log(LogLevel::kInfo, "resource_usage", Outcome::kSuccess,
      "parent_peak_rss_kib: {} | worker_peak_rss_kib: {} | workers_reaped: {}",
      PeakRssKib().value_or(0), worker_peak_rss_kib_, workers_reaped_);
  {
    const SyncTotals sync = ReadSyncTotals(shared_.state().sync);
    Log(LogLevel::kInfo, "storage_sync", Outcome::kSuccess,
        "sync: {} | fdatasync_calls: {} | covered_by_group_commit: {} | durable_bytes: {}",
        SyncModeName(config_.storage_sync), sync.syncs, sync.covered, sync.durable_end);
  }
}

}  // namespace lottery
