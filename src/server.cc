#include "server.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <set>

#include "bet_store.h"
#include "config_reload.h"
#include "draw_barrier.h"
#include "log.h"
#include "net.h"
#include "peak_rss.h"
#include "protocol.h"
#include "round_status.h"
#include "service_notifier.h"
#include "shared_state.h"
#include "signals.h"
#include "socket_activation.h"
#include "worker.h"

namespace lottery {
namespace {

std::string DescribeWaitStatus(int status) {
  if (WIFEXITED(status)) return fmt::format("exit_code: {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    return fmt::format("signal: {}", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status))
                                                                    : "?");
  }
  return "status: unknown";
}

// The live workers. Whatever is left when it goes away is killed and reaped,
// so no path out of the parent leaves a child behind.
class WorkerSet {
 public:
  WorkerSet() = default;
  WorkerSet(const WorkerSet&) = delete;
  WorkerSet& operator=(const WorkerSet&) = delete;
  ~WorkerSet() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
  }
  void Add(pid_t pid) { pids_.insert(pid); }
  bool Remove(pid_t pid) { return pids_.erase(pid) > 0; }
  void SignalAll(int sig) {
    for (pid_t pid : pids_) ::kill(pid, sig);
  }
  std::size_t size() const { return pids_.size(); }
  bool empty() const { return pids_.empty(); }

 private:
  std::set<pid_t> pids_;
};

class Postmaster {
 public:
  Postmaster(const ServerConfig& config, const ServerLaunch& launch, ServiceNotifier notifier,
             SignalFd signals, SharedSegment shared, UniqueFd winners, UniqueFd listener,
             std::string listening_on)
      : config_(config),
        launch_(launch),
        notifier_(std::move(notifier)),
        signals_(std::move(signals)),
        shared_(std::move(shared)),
        winners_(std::move(winners)),
        listener_(std::move(listener)),
        listening_on_(std::move(listening_on)) {}

  int Run();

 private:
  using Clock = std::chrono::steady_clock;

  void Accept();
  void Refuse(UniqueFd connection, const std::string& peer);
  // One warning per second at most, with the count refused since the last.
  void LogRefusals(Clock::time_point now);
  void ReapWorkers();
  void OnWorkerExit(pid_t pid, int status, const rusage& usage);
  void Reload();
  void PublishSettings();
  void Shutdown(int signal);
  // Service manager: STATUS= when the round moved, WATCHDOG=1 when due.
  void ReportStatus();
  void Tick();
  int PollTimeoutMs() const;
  void Notify(const Status& sent);

  ServerConfig config_;  // the running configuration; a reload updates it
  const ServerLaunch& launch_;
  ServiceNotifier notifier_;
  SignalFd signals_;
  SharedSegment shared_;
  UniqueFd winners_;
  UniqueFd listener_;
  std::string listening_on_;
  WorkerSet workers_;

  std::string last_status_;
  Clock::time_point next_status_{};
  Clock::time_point next_watchdog_{};
  bool notify_failed_ = false;
  // Refused connections are logged at most once a second, with a count.
  std::uint64_t refused_unlogged_ = 0;
  std::string last_refused_peer_;
  long worker_peak_rss_kib_ = 0;  // largest ru_maxrss of a reaped worker
  std::uint64_t workers_reaped_ = 0;
  Clock::time_point next_refusal_log_{};
};

constexpr auto kStatusRefresh = std::chrono::seconds(1);

int Postmaster::Run() {
  PublishSettings();
  last_status_ = FormatRoundStatus(ReadRoundSummary(shared_.state()));
  // Ready only now: the socket is listening and the shared state exists.
  Notify(notifier_.Ready(fmt::format("listening on {}; {}", listening_on_, last_status_)));
  next_status_ = Clock::now() + kStatusRefresh;
  if (auto interval = notifier_.watchdog_interval()) {
    Notify(notifier_.WatchdogPing());
    next_watchdog_ = Clock::now() + *interval / 2;
    Log(LogLevel::kInfo, "watchdog", Outcome::kSuccess, "interval: {} | ping_every: {}",
        FormatDuration(*interval), FormatDuration(*interval / 2));
  }
  while (true) {
    pollfd fds[2] = {{signals_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, PollTimeoutMs());
    if (rc < 0) {
      if (errno == EINTR) continue;
      Log(LogLevel::kError, "poll", Outcome::kFail, "error: {}", std::strerror(errno));
      Shutdown(0);
      return kExitOsErr;
    }
    if (fds[0].revents & POLLIN) {
      while (auto sig = signals_.TakePending()) {
        if (*sig == SIGCHLD) {
          ReapWorkers();
        } else if (*sig == SIGTERM || *sig == SIGINT) {
          Shutdown(*sig);
          return kExitOk;
        } else if (*sig == SIGHUP) {
          Reload();
        }
      }
    }
    if (fds[1].revents & POLLIN) Accept();
    Tick();
  }
}

int Postmaster::PollTimeoutMs() const {
  std::optional<Clock::time_point> wake;
  if (notifier_.enabled()) {
    wake = next_status_;
    if (notifier_.watchdog_interval()) wake = std::min(*wake, next_watchdog_);
  }
  // Refusals counted but not logged yet are logged when their second is up.
  if (refused_unlogged_ > 0) wake = wake ? std::min(*wake, next_refusal_log_) : next_refusal_log_;
  if (!wake) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(*wake - Clock::now()).count();
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 60000));
}

void Postmaster::Tick() {
  auto now = Clock::now();
  if (refused_unlogged_ > 0 && now >= next_refusal_log_) LogRefusals(now);
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

void Postmaster::PublishSettings() {
  SharedState& s = shared_.state();
  SharedLock lock(s);
  s.settings.log_level = config_.log_level;
  s.settings.read_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.read_timeout).count();
  s.settings.hello_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.hello_timeout).count();
  s.settings_generation.fetch_add(1, std::memory_order_release);
}

void Postmaster::Reload() {
  Notify(notifier_.Reloading("reloading the configuration"));
  Log(LogLevel::kInfo, "reload", Outcome::kInProgress, "config: {}",
      config_.config_file.empty() ? "none (flags and environment only)" : config_.config_file);
  auto loaded = LoadServerConfig(launch_.argv, launch_.env);
  if (!loaded) {
    Log(LogLevel::kError, "reload", Outcome::kFail,
        "error: {} | detail: keeping the running configuration", loaded.error().message);
    Notify(notifier_.Ready(FormatRoundStatus(ReadRoundSummary(shared_.state()))));
    return;
  }
  ServerConfig next = ApplyReloadable(config_, *loaded);
  if (auto limit = CheckConnectionLimit(next); !limit) {
    Log(LogLevel::kError, "reload", Outcome::kFail,
        "error: {} | detail: keeping the running configuration", limit.error().message);
    Notify(notifier_.Ready(FormatRoundStatus(ReadRoundSummary(shared_.state()))));
    return;
  }
  int applied = 0;
  int ignored = 0;
  for (const ConfigChange& c : DiffServerConfigs(config_, *loaded)) {
    if (c.reloadable) {
      ++applied;
      Log(LogLevel::kInfo, "reload", Outcome::kSuccess, "key: {} | old: {} | new: {}", c.key,
          c.old_value, c.new_value);
    } else {
      ++ignored;
      Log(LogLevel::kWarning, "reload", Outcome::kFail,
          "key: {} | old: {} | new: {} | detail: ignored, needs a restart", c.key, c.old_value,
          c.new_value);
    }
  }
  if (next.listen_backlog != config_.listen_backlog &&
      ::listen(listener_.get(), next.listen_backlog) != 0) {
    // The old backlog stays in force; nothing else depends on it.
    Log(LogLevel::kWarning, "reload", Outcome::kFail, "key: server.listen_backlog | error: {}",
        std::strerror(errno));
  }
  Log(LogLevel::kInfo, "reload", Outcome::kSuccess, "applied: {} | ignored: {}", applied, ignored);
  config_ = next;
  SetLogLevel(config_.log_level);
  PublishSettings();
  Notify(notifier_.Ready(FormatRoundStatus(ReadRoundSummary(shared_.state()))));
}

void Postmaster::Accept() {
  int fd = ::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC);
  if (fd < 0) {
    if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
      Log(LogLevel::kWarning, "accept", Outcome::kFail, "error: {}", std::strerror(errno));
      // Out of descriptors or memory: do not spin at full speed.
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) ::usleep(100000);
    }
    return;
  }
  UniqueFd connection(fd);
  std::string peer = PeerAddress(connection.get());
  if (workers_.size() >= static_cast<std::size_t>(config_.EffectiveMaxConnections())) {
    Refuse(std::move(connection), peer);
    return;
  }
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
    int code = kExitSoftware;
    try {
      code = RunWorker(std::move(connection), config_, shared_, winners_.get());
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "worker", Outcome::kFail, "error: {}", e.what());
    } catch (...) {
      Log(LogLevel::kError, "worker", Outcome::kFail, "error: unknown exception");
    }
    ::_exit(code);
  }
  workers_.Add(pid);
  Log(LogLevel::kDebug, "accept", Outcome::kSuccess, "ip: {} | worker_pid: {} | workers: {}", peer,
      pid, workers_.size());
}

void Postmaster::Refuse(UniqueFd connection, const std::string& peer) {
  // Answered by the parent itself, without a worker and without waiting:
  // a peer that does not read the reply only loses the reply.
  std::string frame;
  EncodeError(frame, ErrorReply{ErrorCode::kTooManyConnections, kNoBetIndex,
                                fmt::format("the server is serving its limit of {} connections "
                                            "(server.max_connections); retry later",
                                            config_.EffectiveMaxConnections())});
  (void)::send(connection.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ++refused_unlogged_;
  last_refused_peer_ = peer;
  auto now = Clock::now();
  if (now >= next_refusal_log_) LogRefusals(now);
}

void Postmaster::LogRefusals(Clock::time_point now) {
  Log(LogLevel::kWarning, "accept", Outcome::kFail,
      "ip: {} | error: too many connections | limit: {} | refused: {}", last_refused_peer_,
      config_.EffectiveMaxConnections(), refused_unlogged_);
  refused_unlogged_ = 0;
  next_refusal_log_ = now + std::chrono::seconds(1);
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
  // As PID 1 we also reap orphans we never forked; only our workers matter.
  if (!workers_.Remove(pid)) return;
  worker_peak_rss_kib_ = std::max<long>(worker_peak_rss_kib_, usage.ru_maxrss);
  ++workers_reaped_;
  bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
  std::uint32_t freed_agency = 0;
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= s.agencies; ++a) {
      if (s.slots[a].owner_pid == pid) {
        s.slots[a].owner_pid = 0;
        freed_agency = a;
      }
    }
    if (s.draw_state == DrawState::kRunning && s.drawer_pid == pid) {
      // The drawer died: a waiting worker takes the draw over.
      s.draw_state = DrawState::kNotYet;
      s.drawer_pid = 0;
      lock.Broadcast();
    }
  }
  Log(clean ? LogLevel::kDebug : LogLevel::kWarning, "worker_exit",
      clean ? Outcome::kSuccess : Outcome::kFail, "worker_pid: {} | {} | agency: {}", pid,
      DescribeWaitStatus(status), freed_agency);
}

void Postmaster::Shutdown(int signal) {
  if (refused_unlogged_ > 0) LogRefusals(Clock::now());
  Notify(notifier_.Stopping(fmt::format("shutting down on {}: stopping {} workers",
                                        signal ? fmt::format("SIG{}", sigabbrev_np(signal))
                                               : std::string("an error"),
                                        workers_.size())));
  Log(LogLevel::kInfo, "shutdown", Outcome::kInProgress, "signal: {} | workers: {}",
      signal ? sigabbrev_np(signal) : "none", workers_.size());
  listener_.Reset();
  Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: listening_socket");
  {
    SharedState& s = shared_.state();
    SharedLock lock(s);
    s.shutting_down = true;
    lock.Broadcast();
  }
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
  // Peak resident sizes, for the benchmark: they must not grow with the
  // number of bets (docs/PERFORMANCE.md). A worker never execs, so its
  // ru_maxrss is its own.
  Log(LogLevel::kInfo, "resource_usage", Outcome::kSuccess,
      "parent_peak_rss_kib: {} | worker_peak_rss_kib: {} | workers_reaped: {}",
      PeakRssKib().value_or(0), worker_peak_rss_kib_, workers_reaped_);
  {
    SyncState& sync = shared_.state().sync;
    Log(LogLevel::kInfo, "storage_sync", Outcome::kSuccess,
        "sync: {} | fdatasync_calls: {} | covered_by_group_commit: {} | durable_bytes: {}",
        SyncModeName(config_.storage_sync), sync.syncs, sync.covered, sync.durable_end);
  }
}

}  // namespace

static_assert(kMaxAgencyCount == kMaxAgencies, "config and shared segment disagree on the agency limit");

int RunServer(const ServerConfig& config, const ServerLaunch& launch) {
  SetLogLevel(config.log_level);
  ::signal(SIGPIPE, SIG_IGN);
  // A write beyond RLIMIT_FSIZE must fail with EFBIG (and be answered like a
  // full disk), not kill the worker.
  ::signal(SIGXFSZ, SIG_IGN);
  // Taken first: descriptor 3 belongs to the manager's socket until then.
  auto activated = TakeActivatedSocket(launch.env, ::getpid());
  UnsetActivationEnvironment();
  auto signals = SignalFd::Create({SIGTERM, SIGINT, SIGCHLD, SIGHUP});
  if (!signals) {
    Log(LogLevel::kError, "startup", Outcome::kFail, "error: {}", signals.error().message);
    return kExitOsErr;
  }
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "port: {} | listen_backlog: {} | logging_level: {} | agencies: {} | address: {} | "
      "storage: {} | read_timeout: {} | max_connections: {} | winning_number: {}",
      config.port, config.listen_backlog, LogLevelName(config.log_level), config.agencies,
      config.address, config.storage_path, FormatDuration(config.read_timeout),
      config.EffectiveMaxConnections(), config.winning_number);
  if (config.listen_backlog < static_cast<int>(config.agencies)) {
    Log(LogLevel::kWarning, "config", Outcome::kInProgress,
        "listen_backlog: {} | agencies: {} | detail: agencies that connect at once beyond the "
        "backlog have their connection attempts dropped and retried a second later",
        config.listen_backlog, config.agencies);
  }
  auto notifier = ServiceNotifier::FromEnvironment(launch.env, ::getpid(),
                                                   AvailableNotifyBackends().front());
  if (notifier.enabled()) {
    Log(LogLevel::kInfo, "notify", Outcome::kSuccess, "socket: {} | backend: {}",
        launch.env.at("NOTIFY_SOCKET"), NotifyBackendName(notifier.backend()));
  }
  auto shared = SharedSegment::Create(static_cast<std::uint32_t>(config.agencies));
  if (!shared) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail, "error: cannot create the shared segment: {}",
        shared.error().message);
    return kExitOsErr;
  }
  auto winners = CreateWinnersFile();
  if (!winners) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail,
        "error: cannot create the shared winners file: {}", winners.error().message);
    return kExitOsErr;
  }
  {
    // Fail now, not in the first worker, when the bets file is not writable.
    auto store = BetStore::Open(config.storage_path, config.storage_sync);
    if (!store) {
      Log(LogLevel::kError, "storage", Outcome::kFail, "error: {}", store.error().message);
      return kExitCantCreate;
    }
    auto cut = store->CutTornTail();
    if (!cut) {
      Log(LogLevel::kError, "storage", Outcome::kFail, "error: {}", cut.error().message);
      return kExitCantCreate;
    }
    if (*cut > 0) {
      Log(LogLevel::kWarning, "recovery", Outcome::kSuccess,
          "path: {} | bytes_cut: {} | detail: the last line had no line end (a write torn by a "
          "crash); it was never acknowledged",
          config.storage_path, *cut);
    }
    auto round = store->RecoverRound(static_cast<std::uint32_t>(config.agencies));
    if (!round) {
      Log(LogLevel::kError, "recovery", Outcome::kFail, "error: {}", round.error().message);
      return round.error().sys_errno != 0 ? kExitCantCreate : kExitConfig;
    }
    {
      SharedState& s = shared->state();
      SharedLock lock(s);
      for (std::uint32_t a = 1; a <= s.agencies; ++a) {
        s.slots[a].last_seq = round->agencies[a].last_seq;
        s.slots[a].bets_stored = round->agencies[a].bets;
      }
      s.total_bets = round->bets;
    }
    Log(round->data_bytes_cut > 0 || round->journal_bytes_cut > 0 ? LogLevel::kWarning
                                                                    : LogLevel::kInfo,
        "recovery", Outcome::kSuccess,
        "round: {} | batches: {} | bets: {} | data_bytes_cut: {} | journal_bytes_cut: {}",
        round->resumed ? "resumed" : "new", round->batches, round->bets, round->data_bytes_cut,
        round->journal_bytes_cut);
    auto size = store->Size();
    // Bytes already in the file count as written; the first sync covers them.
    shared->state().sync.written_end.store(size ? *size : 0);
    Log(LogLevel::kInfo, "storage", Outcome::kSuccess, "path: {} | existing_bytes: {} | sync: {}",
        config.storage_path, size ? *size : 0, SyncModeName(config.storage_sync));
    if (config.storage_sync == SyncMode::kNever) {
      Log(LogLevel::kWarning, "storage", Outcome::kInProgress,
          "sync: never | detail: acknowledged bets are not synced to disk and can be lost in a "
          "crash; use storage.sync = \"always\" outside benchmarks");
    }
  }
  UniqueFd listener;
  std::string listening_on;
  if (!activated) {
    Log(LogLevel::kError, "listen", Outcome::kFail, "error: {}", activated.error().message);
    return kExitOsErr;
  }
  if (*activated) {
    ActivatedSocket& socket = **activated;
    listener = std::move(socket.listener);
    auto port = LocalPort(listener.get());
    listening_on = fmt::format("port {} (socket activation)", port ? *port : 0);
    Log(LogLevel::kInfo, "listen", Outcome::kSuccess,
        "port: {} | activation: socket | descriptor: {} | detail: server.address and server.port "
        "are not used",
        port ? *port : 0, kListenFdsStart);
    if (socket.extra_descriptors > 0) {
      Log(LogLevel::kWarning, "listen", Outcome::kInProgress,
          "detail: {} more activated sockets closed; the server serves one", socket.extra_descriptors);
    }
    if (port && *port != config.port) {
      Log(LogLevel::kWarning, "listen", Outcome::kInProgress,
          "detail: the activated socket listens on port {}, server.port says {}", *port, config.port);
    }
  } else {
    auto bound = ListenTcp(config.address, config.port, config.listen_backlog);
    if (!bound) {
      Log(LogLevel::kError, "listen", Outcome::kFail, "error: {}", bound.error().message);
      return kExitOsErr;
    }
    listener = std::move(*bound);
    auto port = LocalPort(listener.get());
    listening_on = fmt::format("{}:{}", config.address, port ? *port : config.port);
    Log(LogLevel::kInfo, "listen", Outcome::kSuccess, "address: {} | port: {}", config.address,
        port ? *port : config.port);
  }
  int code;
  {
    Postmaster postmaster(config, launch, std::move(notifier), std::move(*signals),
                          std::move(*shared), std::move(*winners), std::move(listener),
                          std::move(listening_on));
    code = postmaster.Run();
  }
  Log(LogLevel::kInfo, "close", Outcome::kSuccess,
      "resource: shared_memory | detail: segment and winners file released");
  Log(LogLevel::kInfo, "exit", code == kExitOk ? Outcome::kSuccess : Outcome::kFail,
      "exit_code: {}", code);
  return code;
}

int ReportValidConfig(const ServerConfig& config) {
  std::string text;
  for (const auto& [key, value] : ServerConfigValues(config)) {
    text += fmt::format("{} = {}\n", key, value);
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  Log(LogLevel::kInfo, "check_config", Outcome::kSuccess, "config: {}",
      config.config_file.empty() ? "none (defaults, environment and flags)" : config.config_file);
  return kExitOk;
}

}  // namespace lottery
