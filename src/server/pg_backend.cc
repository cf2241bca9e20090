#include "server/pg_backend.h"

#include <libpq-fe.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <thread>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "worker/draw_barrier.h"

namespace lottery {
namespace {

constexpr auto kConnectTimeout = std::chrono::seconds(10);
// How often a standby asks for the lease, and retries an unreachable database.
constexpr int kStandbyRetryMs = 1000;
// Committers forked again within a minute at most; beyond, the database is
// failing faster than restarts help.
constexpr int kMaxRestartsPerMinute = 10;

// Waits `ms` for SIGTERM or SIGINT on `signals` (others are dropped).
bool StopRequested(SignalFd& signals, int ms) {
  pollfd p{signals.fd(), POLLIN, 0};
  if (::poll(&p, 1, ms) <= 0) return false;
  while (auto sig = signals.TakePending()) {
    if (*sig == SIGTERM || *sig == SIGINT) return true;
  }
  return false;
}

int ExitCodeFor(const Error& error) {
  return error.kind == ErrorKind::kConfig ? kExitConfig : kExitUnavailable;
}

std::string Holder() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return fmt::format("{} pid {}", host, ::getpid());
}

// The schema was created (held 0) or upgraded from version `held`.
void LogSchemaMade(const PgSession& session, int held) {
  Log(LogLevel::kInfo, "schema", Outcome::kSuccess, "database: {} | version: {} | detail: {}",
      session.Describe(), kPgSchemaVersion,
      held == 0 ? std::string("created") : fmt::format("upgraded from version {}", held));
}

// With the lease held: a new epoch fences whichever server held it before,
// and only then is a version-1 schema upgraded, so that no server of the
// old release stores meanwhile.
Result<std::uint64_t> TakeOver(PgSession& session) {
  auto epoch = BumpPgEpoch(session, Holder());
  if (!epoch) return epoch;
  auto upgraded = UpgradePgSchema(session);
  if (!upgraded) return std::unexpected(upgraded.error());
  if (*upgraded) LogSchemaMade(session, 1);
  return epoch;
}

// Holds the lease on `session` once it is free; nullopt on an error
// (returned in `error`) or a stop request.
std::optional<bool> WaitForLease(PgSession& session, const ServerConfig& config, SignalFd& signals,
                                 Error& error) {
  bool announced = false;
  while (true) {
    auto got = TryAcquirePgLease(session);
    if (!got) {
      error = got.error();
      return std::nullopt;
    }
    if (*got) return true;
    if (!config.standby) return false;
    if (!announced) {
      Log(LogLevel::kInfo, "standby", Outcome::kInProgress,
          "database: {} | detail: another server holds the lease; waiting to take over",
          session.Describe());
      announced = true;
    }
    if (StopRequested(signals, kStandbyRetryMs)) {
      error = Error{ErrorKind::kInternal, "stopped while waiting for the lease", 0};
      return std::nullopt;
    }
  }
}

}  // namespace

std::expected<PgBackend, int> PgBackend::Acquire(const ServerConfig& config, SignalFd& signals) {
  while (true) {
    auto session =
        PgSession::Connect(config.postgresql_dsn, "lottery-server-lease", kConnectTimeout);
    Error error;
    if (session) {
      auto schema = EnsurePgSchema(*session);
      if (!schema) error = schema.error();
      if (schema && *schema == 0) LogSchemaMade(*session, 0);
    } else {
      error = session.error();
    }
    std::optional<bool> leased;
    if (session && error.message.empty()) leased = WaitForLease(*session, config, signals, error);
    if (leased && *leased) {
      auto epoch = TakeOver(*session);
      if (epoch) return PgBackend(std::move(*session), *epoch, config);
      error = epoch.error();
    }
    if (leased && !*leased) {
      Log(LogLevel::kError, "storage", Outcome::kFail,
          "backend: postgresql | database: {} | error: another server holds the lease; set "
          "server.standby to wait for it",
          session->Describe());
      return std::unexpected(kExitTempFail);
    }
    if (error.kind == ErrorKind::kInternal) return std::unexpected(kExitOk);  // stopped
    const bool retry = config.standby && error.kind == ErrorKind::kIo;
    Log(retry ? LogLevel::kWarning : LogLevel::kError, "storage", Outcome::kFail,
        "backend: postgresql | error: {}{}", error.message,
        retry ? " | detail: standby, retrying" : "");
    if (!retry) return std::unexpected(ExitCodeFor(error));
    if (StopRequested(signals, kStandbyRetryMs)) return std::unexpected(kExitOk);
  }
}

PgBackend::PgBackend(PgSession lease, std::uint64_t epoch, const ServerConfig& config)
    : lease_(std::move(lease)),
      epoch_(epoch),
      dsn_(config.postgresql_dsn),
      agencies_(static_cast<std::uint32_t>(config.agencies)),
      winning_number_(config.winning_number),
      committers_wanted_(config.postgresql_connections - 1) {
  Log(LogLevel::kInfo, "storage", Outcome::kSuccess,
      "backend: postgresql | database: {} | epoch: {} | sessions: {} | detail: lease taken",
      lease_.Describe(), epoch_, config.postgresql_connections);
}

PgBackend::~PgBackend() { StopCommitters(); }

int PgBackend::Recover(SharedSegment& shared, int winners_fd) {
  auto state = LoadPgRoundState(lease_, agencies_);
  if (!state) {
    Log(LogLevel::kError, "recovery", Outcome::kFail, "backend: postgresql | error: {}",
        state.error().message);
    return ExitCodeFor(state.error());
  }
  if (state->state == RoundState::kOpen) {
    auto indexed = SetPgIndexedNumber(lease_, epoch_, state->round, winning_number_);
    if (!indexed) {
      Log(LogLevel::kError, "recovery", Outcome::kFail, "backend: postgresql | error: {}",
          indexed.error().message);
      return ExitCodeFor(indexed.error());
    }
    if (!*indexed) {
      Log(LogLevel::kWarning, "recovery", Outcome::kFail,
          "backend: postgresql | round_number: {} | detail: the round's stored batches index "
          "another winning number; its draw will scan the round's rows",
          state->round);
    }
  }
  std::uint64_t bets = 0;
  {
    SharedState& s = shared.state();
    SharedLock lock(s);
    for (const PgAgencyProgress& p : state->agencies) {
      if (p.agency < 1 || p.agency > s.agencies) continue;
      AgencySlot& slot = s.slots[p.agency];
      slot.last_seq = p.last_seq;
      slot.bets_stored = p.bets_stored;
      slot.stored_digest = p.stored_digest;
      slot.finished = p.finished;
      s.finished_count += p.finished ? 1 : 0;
      s.metrics.agencies[p.agency].round_bets.store(p.bets_stored, std::memory_order_relaxed);
      s.metrics.agencies[p.agency].finished.store(p.finished ? 1 : 0, std::memory_order_relaxed);
      bets += p.bets_stored;
    }
    s.total_bets = bets;
    s.betting_closed.store(state->state == RoundState::kClosed, std::memory_order_release);
    s.metrics.round.store(state->round, std::memory_order_relaxed);
    s.round.store(state->round, std::memory_order_release);
  }
  Log(LogLevel::kInfo, "recovery", Outcome::kSuccess,
      "backend: postgresql | round_number: {} | round_state: {} | bets: {} | agencies_seen: {}",
      state->round, RoundStateName(state->state), bets, state->agencies.size());
  if (state->result) {
    if (Status published = PublishRoundResult(*state->result, shared, winners_fd); !published) {
      Log(LogLevel::kError, "recovery", Outcome::kFail, "error: {}", published.error().message);
      return kExitCantCreate;
    }
  }
  return kExitOk;
}

Status PgBackend::StartCommitters(std::function<void()> in_child) {
  auto listener = ListenForCommitters(address_);
  if (!listener) return std::unexpected(listener.error());
  listener_ = std::move(*listener);
  link_ = PgCommitterLink(address_);
  in_child_ = std::move(in_child);
  for (int i = 0; i < committers_wanted_; ++i) {
    if (auto pid = ForkCommitter(i); !pid) return std::unexpected(pid.error());
  }
  return Ok();
}

Result<pid_t> PgBackend::ForkCommitter(int index) {
  const pid_t parent = ::getpid();
  pid_t pid = ::fork();
  if (pid < 0) return FailErrno("fork a storage committer");
  if (pid == 0) {
    // A committer does not outlive its parent, and no exception crosses
    // the fork.
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(kExitOk);
    int code = kExitSoftware;
    try {
      if (in_child_) in_child_();
      code = RunPgCommitter(PgCommitterOptions{dsn_, epoch_, agencies_, index, winning_number_},
                            listener_.get());
    } catch (const std::exception& e) {
      Log(LogLevel::kError, "committer", Outcome::kFail, "error: {}", e.what());
    } catch (...) {
      Log(LogLevel::kError, "committer", Outcome::kFail, "error: unknown exception");
    }
    ::_exit(code);
  }
  committers_.insert(pid);
  return pid;
}

bool PgBackend::OnChildExit(pid_t pid, int status, bool& fenced) {
  if (committers_.erase(pid) == 0) return false;
  fenced = WIFEXITED(status) && WEXITSTATUS(status) == kExitTempFail;
  if (stopping_ || fenced) return true;
  const auto now = std::chrono::steady_clock::now();
  std::erase_if(restarts_, [&](auto t) { return now - t > std::chrono::minutes(1); });
  if (static_cast<int>(restarts_.size()) >= kMaxRestartsPerMinute) {
    Log(LogLevel::kError, "committer", Outcome::kFail,
        "pid: {} | detail: not started again: {} restarts in the last minute", pid,
        restarts_.size());
    return true;
  }
  restarts_.push_back(now);
  auto again = ForkCommitter(static_cast<int>(committers_.size()));
  Log(LogLevel::kWarning, "committer", again ? Outcome::kSuccess : Outcome::kFail,
      "pid: {} | exit: {} | detail: {}", pid, WIFEXITED(status) ? WEXITSTATUS(status) : -1,
      again ? fmt::format("started again as {}", *again) : again.error().message);
  return true;
}

void PgBackend::StopCommitters() {
  stopping_ = true;
  for (pid_t pid : committers_) ::kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!committers_.empty()) {
    for (auto it = committers_.begin(); it != committers_.end();) {
      it = ::waitpid(*it, nullptr, WNOHANG) != 0 ? committers_.erase(it) : std::next(it);
    }
    if (committers_.empty()) break;
    if (std::chrono::steady_clock::now() > deadline) {
      for (pid_t pid : committers_) ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

bool PgBackend::LeaseAlive() {
  auto* conn = static_cast<PGconn*>(lease_.raw());
  if (conn == nullptr || PQconsumeInput(conn) == 0) return false;
  return PQstatus(conn) == CONNECTION_OK;
}

}  // namespace lottery
