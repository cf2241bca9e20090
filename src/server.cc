#include "server.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <set>

#include "bet_store.h"
#include "draw_barrier.h"
#include "log.h"
#include "net.h"
#include "shared_state.h"
#include "signals.h"
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
  Postmaster(const ServerConfig& config, SignalFd signals, SharedSegment shared,
             UniqueFd winners, UniqueFd listener)
      : config_(config),
        signals_(std::move(signals)),
        shared_(std::move(shared)),
        winners_(std::move(winners)),
        listener_(std::move(listener)) {}

  int Run();

 private:
  void Accept();
  void ReapWorkers();
  void OnWorkerExit(pid_t pid, int status);
  void Shutdown(int signal);

  const ServerConfig& config_;
  SignalFd signals_;
  SharedSegment shared_;
  UniqueFd winners_;
  UniqueFd listener_;
  WorkerSet workers_;
};

int Postmaster::Run() {
  while (true) {
    pollfd fds[2] = {{signals_.fd(), POLLIN, 0}, {listener_.get(), POLLIN, 0}};
    int rc = ::poll(fds, 2, -1);
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
          Log(LogLevel::kWarning, "reload", Outcome::kFail,
              "detail: configuration reload is not supported; restart to apply changes");
        }
      }
    }
    if (fds[1].revents & POLLIN) Accept();
  }
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

void Postmaster::ReapWorkers() {
  while (true) {
    int status = 0;
    pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) return;
    OnWorkerExit(pid, status);
  }
}

void Postmaster::OnWorkerExit(pid_t pid, int status) {
  // As PID 1 we also reap orphans we never forked; only our workers matter.
  if (!workers_.Remove(pid)) return;
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
  using Clock = std::chrono::steady_clock;
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
      pid_t pid = ::waitpid(-1, &status, 0);
      if (pid < 0) break;
      OnWorkerExit(pid, status);
    }
  }
  Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: workers | detail: all reaped");
}

}  // namespace

static_assert(kMaxAgencyCount == kMaxAgencies, "config and shared segment disagree on the agency limit");

int RunServer(const ServerConfig& config) {
  SetLogLevel(config.log_level);
  ::signal(SIGPIPE, SIG_IGN);
  auto signals = SignalFd::Create({SIGTERM, SIGINT, SIGCHLD, SIGHUP});
  if (!signals) {
    Log(LogLevel::kError, "startup", Outcome::kFail, "error: {}", signals.error().message);
    return kExitOsErr;
  }
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "port: {} | listen_backlog: {} | logging_level: {} | agencies: {} | address: {} | "
      "storage: {} | read_timeout: {} | winning_number: {}",
      config.port, config.listen_backlog, LogLevelName(config.log_level), config.agencies,
      config.address, config.storage_path, FormatDuration(config.read_timeout),
      config.winning_number);
  {
    // Fail now, not in the first worker, when the bets file is not writable.
    auto store = BetStore::Open(config.storage_path);
    if (!store) {
      Log(LogLevel::kError, "storage", Outcome::kFail, "error: {}", store.error().message);
      return kExitCantCreate;
    }
    auto size = store->Size();
    Log(LogLevel::kInfo, "storage", Outcome::kSuccess, "path: {} | existing_bytes: {}",
        config.storage_path, size ? *size : 0);
  }
  auto shared = SharedSegment::Create(static_cast<std::uint32_t>(config.agencies));
  if (!shared) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail, "error: {}", shared.error().message);
    return kExitOsErr;
  }
  auto winners = CreateWinnersFile();
  if (!winners) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail, "error: {}", winners.error().message);
    return kExitOsErr;
  }
  auto listener = ListenTcp(config.address, config.port, config.listen_backlog);
  if (!listener) {
    Log(LogLevel::kError, "listen", Outcome::kFail, "error: {}", listener.error().message);
    return kExitOsErr;
  }
  auto port = LocalPort(listener->get());
  Log(LogLevel::kInfo, "listen", Outcome::kSuccess, "address: {} | port: {}", config.address,
      port ? *port : config.port);
  int code;
  {
    Postmaster postmaster(config, std::move(*signals), std::move(*shared), std::move(*winners),
                          std::move(*listener));
    code = postmaster.Run();
  }
  Log(LogLevel::kInfo, "close", Outcome::kSuccess,
      "resource: shared_memory | detail: segment and winners file released");
  Log(LogLevel::kInfo, "exit", code == kExitOk ? Outcome::kSuccess : Outcome::kFail,
      "exit_code: {}", code);
  return code;
}

}  // namespace lottery
