#include "server/startup.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <expected>
#include <optional>
#include <string>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "common/signals.h"
#include "server/control_socket.h"
#include "server/listener.h"
#include "server/metrics_endpoint.h"
#include "server/pg_backend.h"
#include "server/postmaster.h"
#include "server/server_tls.h"
#include "server/service_notifier.h"
#include "server/socket_activation.h"
#include "shm/shared_state.h"
#include "storage/data_lock.h"
#include "storage/recovery.h"
#include "storage/rounds.h"
#include "wire/bet.h"
#include "worker/draw_barrier.h"
#include "worker/winners_file.h"

namespace lottery {
namespace {

// The draw reads the winners from this index instead of the whole file.
int IndexWinners(const ServerConfig& config, StartupRecovery& store, SharedSegment& shared) {
  const auto index_started = std::chrono::steady_clock::now();
  auto index = store.IndexWinners(shared, static_cast<std::uint32_t>(config.agencies),
                                  config.winning_number);
  if (!index) {
    Log(LogLevel::kError, "winner_index", Outcome::kFail, "error: {}", index.error().message);
    return kExitCantCreate;
  }
  const std::chrono::duration<double, std::milli> index_took =
      std::chrono::steady_clock::now() - index_started;
  Log(LogLevel::kInfo, "winner_index", Outcome::kSuccess,
      "enabled: {} | apuestas: {} | ganadores: {} | duracion_ms: {:.1f}{}",
      index->enabled ? "yes" : "no", index->bets, index->winners, index_took.count(),
      index->enabled ? ""
      : config.winning_number == kRandomWinningNumber
          ? " | detail: draw.winning_number is random; the draw scans the file"
          : " | detail: the file ends inside a record or holds too many "
            "winners; the draw scans the file");
  return kExitOk;
}

void WarnIfNeverSynced(const ServerConfig& config) {
  if (config.storage_sync == SyncMode::kNever) {
    Log(LogLevel::kWarning, "storage", Outcome::kInProgress,
        "sync: never | detail: acknowledged bets are not synced to disk and can be lost in a "
        "crash; use storage.sync = \"always\" outside benchmarks");
  }
}

// Start-up recovery through storage's one interface for the parent
// (storage/recovery.h). Fails now, not in the first worker, when the bets
// file is not writable. Returns an exit code (kExitOk to go on).
int RecoverStorage(const ServerConfig& config, SharedSegment& shared, int winners_fd) {
  auto store = StartupRecovery::Open(config.storage_path, config.storage_sync);
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
  auto round = store->RecoverCurrentRound(static_cast<std::uint32_t>(config.agencies));
  if (!round) {
    Log(LogLevel::kError, "recovery", Outcome::kFail, "error: {}", round.error().message);
    // The files cannot be used (73), or they describe another round (78).
    return round.error().kind == ErrorKind::kIo ? kExitCantCreate : kExitConfig;
  }
  if (auto opened = store->opened_round()) {
    Log(LogLevel::kWarning, "round_open", Outcome::kSuccess,
        "round: {} | detail: the previous round was drawn and is archived under {}", *opened,
        ArchiveRoot(config.storage_path));
  }
  Log(round->data_bytes_cut > 0 || round->journal_bytes_cut > 0 ? LogLevel::kWarning
                                                                : LogLevel::kInfo,
      "recovery", Outcome::kSuccess,
      "round: {} | batches: {} | bets: {} | data_bytes_cut: {} | journal_bytes_cut: {} | "
      "round_number: {} | round_state: {}",
      round->resumed ? "resumed" : "new", round->batches, round->bets, round->data_bytes_cut,
      round->journal_bytes_cut, round->number, RoundStateName(round->state));
  auto size = store->Publish(*round, shared);
  if (round->result) {
    // Served as the drawn worker served it, byte for byte, until the next round opens.
    if (Status published = PublishRoundResult(*round->result, shared, winners_fd); !published) {
      Log(LogLevel::kError, "recovery", Outcome::kFail, "error: {}", published.error().message);
      return kExitCantCreate;
    }
  }
  Log(LogLevel::kInfo, "storage", Outcome::kSuccess, "path: {} | existing_bytes: {} | sync: {}",
      config.storage_path, size ? *size : 0, SyncModeName(config.storage_sync));
  if (int code = IndexWinners(config, *store, shared); code != kExitOk) return code;
  WarnIfNeverSynced(config);
  return kExitOk;
}

// A write to a closed socket must fail with EPIPE, not kill the process; a
// write beyond RLIMIT_FSIZE must fail with EFBIG (and be answered like a
// full disk), not kill the worker.
void IgnoreWriteSignals() {
  ::signal(SIGPIPE, SIG_IGN);
  ::signal(SIGXFSZ, SIG_IGN);
}

void LogConfig(const ServerConfig& config) {
  Log(LogLevel::kInfo, "config", Outcome::kSuccess,
      "port: {} | listen_backlog: {} | logging_level: {} | agencies: {} | address: {} | "
      "storage: {} | read_timeout: {} | max_connections: {} | winning_number: {}",
      config.port, config.listen_backlog, LogLevelName(config.log_level), config.agencies,
      config.address,
      config.storage_backend == StorageBackend::kPostgresql
          ? fmt::format("postgresql {}", RedactDsn(config.postgresql_dsn))
          : config.storage_path,
      FormatDuration(config.read_timeout), config.EffectiveMaxConnections(),
      config.winning_number == kRandomWinningNumber ? std::string("random")
                                                    : std::to_string(config.winning_number));
  if (config.listen_backlog < static_cast<int>(config.agencies)) {
    Log(LogLevel::kWarning, "config", Outcome::kInProgress,
        "listen_backlog: {} | agencies: {} | detail: agencies that connect at once beyond the "
        "backlog have their connection attempts dropped and retried a second later",
        config.listen_backlog, config.agencies);
  }
}

// The certificate files are read before anything else is touched: a bad
// one is a configuration error (78), like a missing one.
std::expected<std::optional<TlsContext>, int> LoadTls(const ServerConfig& config) {
  auto tls = LoadServerTls(config);
  if (!tls) {
    Log(LogLevel::kError, "tls", Outcome::kFail, "error: {}", tls.error());
    return std::unexpected(kExitConfig);
  }
  Log(LogLevel::kInfo, "tls", Outcome::kSuccess, "{}", DescribeServerTls(config));
  if (config.tls.mode == TlsMode::kOff) {
    Log(LogLevel::kWarning, "tls", Outcome::kInProgress,
        "mode: off | detail: connections are not encrypted and not authenticated: any peer "
        "that reaches the port can claim any agency, bet as it and read its winners");
  }
  return std::move(*tls);
}

ServiceNotifier OpenNotifier(const ServerLaunch& launch) {
  auto notifier =
      ServiceNotifier::FromEnvironment(launch.env, ::getpid(), AvailableNotifyBackends().front());
  if (notifier.enabled()) {
    Log(LogLevel::kInfo, "notify", Outcome::kSuccess, "socket: {} | backend: {}",
        launch.env.at("NOTIFY_SOCKET"), NotifyBackendName(notifier.backend()));
  }
  return notifier;
}

// Whoever owns the data for this start: the PostgreSQL lease, or the bets
// file's lock. Exactly one is set once AcquireData succeeded.
struct DataOwner {
  std::optional<PgBackend> pg;
  std::optional<DataLock> lock;
};

// The data is this instance's before anything opens, creates or recovers
// it (storage/data_lock.h). A server killed while its workers ran leaves
// them holding the lock for a moment: they stop when their parent dies.
// On PostgreSQL the lease (an advisory lock) is that lock; a standby
// waits for it here, before it listens (server/pg_backend.h). Returns the
// exit code when the server must stop here (0: stopped while it waited),
// nothing once the data is this server's.
std::optional<int> AcquireData(const ServerConfig& config, SignalFd& signals, DataOwner& owner) {
  if (config.storage_backend == StorageBackend::kPostgresql) {
    auto acquired = PgBackend::Acquire(config, signals);
    if (!acquired) return acquired.error();
    owner.pg.emplace(std::move(*acquired));
    return std::nullopt;
  }
  const auto orphan_wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      config.shutdown_timeout + std::chrono::seconds(5));
  auto acquired = DataLock::Acquire(config.storage_path, orphan_wait, [&](pid_t owner_pid) {
    Log(LogLevel::kWarning, "storage_lock", Outcome::kInProgress,
        "path: {} | owner_pid: {} | detail: the server that held it is gone; waiting up to {} "
        "for its workers to exit",
        DataLock::PathFor(config.storage_path), owner_pid, FormatDuration(Seconds(orphan_wait)));
  });
  if (!acquired) {
    Log(LogLevel::kError, "storage_lock", Outcome::kFail, "error: {}", acquired.error().message);
    return acquired.error().kind == ErrorKind::kBusy ? kExitTempFail : kExitCantCreate;
  }
  owner.lock.emplace(std::move(*acquired));
  return std::nullopt;
}

int OpenMetrics(const ServerConfig& config, std::optional<MetricsEndpoint>& metrics) {
  if (config.metrics_address.empty()) return kExitOk;
  auto opened = MetricsEndpoint::Open(config.metrics_address);
  if (!opened) {
    Log(LogLevel::kError, "metrics", Outcome::kFail, "address: {} | error: {}",
        config.metrics_address, opened.error().message);
    return kExitOsErr;
  }
  Log(LogLevel::kInfo, "metrics", Outcome::kSuccess, "listening: {} | path: /metrics",
      opened->description());
  metrics = std::move(*opened);
  return kExitOk;
}

std::expected<SharedSegment, int> CreateShared(const ServerConfig& config) {
  auto shared = SharedSegment::Create(static_cast<std::uint32_t>(config.agencies));
  if (!shared) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail,
        "error: cannot create the shared segment: {}", shared.error().message);
    return std::unexpected(kExitOsErr);
  }
  return std::move(*shared);
}

std::expected<UniqueFd, int> CreateWinners() {
  auto winners = CreateWinnersFile();
  if (!winners) {
    Log(LogLevel::kError, "shared_memory", Outcome::kFail,
        "error: cannot create the shared winners file: {}", winners.error().message);
    return std::unexpected(kExitOsErr);
  }
  return std::move(*winners);
}

// lotteryctl's socket. A failure is the configuration's (another
// server's socket at that path, or a path that cannot hold one), unless
// the process ran out of descriptors or memory.
std::expected<ControlEndpoint, int> OpenControl(const std::string& control_path) {
  auto control = ControlEndpoint::Open(control_path);
  if (!control) {
    Log(LogLevel::kError, "control", Outcome::kFail, "path: {} | error: {}", control_path,
        control.error().message);
    const int err = control.error().sys_errno;
    const bool out_of_resources = err == EMFILE || err == ENFILE || err == ENOMEM || err == ENOBUFS;
    return std::unexpected(out_of_resources ? kExitOsErr : kExitConfig);
  }
  Log(LogLevel::kInfo, "control", Outcome::kSuccess, "listening: {} | mode: 0600", control->path());
  return std::move(*control);
}

// A standby can take the lease in the moment the database itself fails
// over (the active server died, the primary is being stopped): its session
// is then lost before it served. It waits for the lease again, on whichever
// database the DSN reaches now, rather than exit. Recover writes the
// segment only once it has read the round, so a retry starts clean.
int RecoverFromDatabase(const ServerConfig& config, SignalFd& signals, DataOwner& owner,
                        SharedSegment& shared, int winners_fd) {
  while (true) {
    const int code = owner.pg->Recover(shared, winners_fd);
    if (code != kExitUnavailable || !config.standby) return code;
    Log(LogLevel::kWarning, "standby", Outcome::kInProgress,
        "detail: the database went away before this server served; waiting for the lease "
        "again");
    owner.pg.reset();
    if (std::optional<int> stop = AcquireData(config, signals, owner)) return *stop;
  }
}

int RecoverData(const ServerConfig& config, SignalFd& signals, DataOwner& owner,
                SharedSegment& shared, int winners_fd) {
  if (owner.pg) return RecoverFromDatabase(config, signals, owner, shared, winners_fd);
  if (Status published = owner.lock->Publish(::getpid()); !published) {
    Log(LogLevel::kError, "storage_lock", Outcome::kFail, "error: {}", published.error().message);
    return kExitCantCreate;
  }
  Log(LogLevel::kInfo, "storage_lock", Outcome::kSuccess, "path: {} | owner_pid: {}",
      owner.lock->path(), ::getpid());
  if (int code = RecoverStorage(config, shared, winners_fd); code != kExitOk) {
    // A failed start leaves no lock file naming a pid that is about to die.
    owner.lock->Release(DataLock::LockFile::kRemove);
    return code;
  }
  return kExitOk;
}

void ReleaseData(DataOwner& owner) {
  if (owner.lock) {
    // Every worker is reaped: nobody else holds the lock now.
    owner.lock->Release(DataLock::LockFile::kRemove);
    Log(LogLevel::kInfo, "close", Outcome::kSuccess, "resource: storage_lock | path: {}",
        owner.lock->path());
    return;
  }
  owner.pg.reset();
  Log(LogLevel::kInfo, "close", Outcome::kSuccess,
      "resource: storage_lease | detail: committers stopped, lease released");
}

}  // namespace

// Each step logs its own failure and returns the exit code; what a step
// opened closes when RunServer returns, in the reverse order.
int RunServer(const ServerConfig& config, const ServerLaunch& launch) {
  SetLogLevel(config.log_level);
  IgnoreWriteSignals();
  // Taken first: descriptor 3 belongs to the manager's socket until then.
  auto activated = TakeActivatedSocket(launch.env, ::getpid());
  UnsetActivationEnvironment();
  // SIGUSR2: the operator closes betting (Postmaster::CloseBettingNow).
  auto signals = SignalFd::Create({SIGTERM, SIGINT, SIGCHLD, SIGHUP, SIGUSR2});
  if (!signals) {
    Log(LogLevel::kError, "startup", Outcome::kFail, "error: {}", signals.error().message);
    return kExitOsErr;
  }
  LogConfig(config);
  auto tls = LoadTls(config);
  if (!tls) return tls.error();
  auto notifier = OpenNotifier(launch);
  DataOwner owner;
  if (std::optional<int> stop = AcquireData(config, *signals, owner)) return *stop;
  // Until recovery runs, a failure leaves the data directory as it was: a
  // lock file this start created goes again (DataLock::Release).
  if (!activated) {
    Log(LogLevel::kError, "listen", Outcome::kFail, "error: {}", activated.error().message);
    return kExitOsErr;
  }
  auto listener = OpenListener(config, std::move(*activated));
  if (!listener) return kExitOsErr;
  std::optional<MetricsEndpoint> metrics;
  if (int code = OpenMetrics(config, metrics); code != kExitOk) return code;
  auto shared = CreateShared(config);
  if (!shared) return shared.error();
  auto winners = CreateWinners();
  if (!winners) return winners.error();
  auto control = OpenControl(config.EffectiveControlSocket(launch.env));
  if (!control) return control.error();
  if (int code = RecoverData(config, *signals, owner, *shared, winners->get()); code != kExitOk) {
    return code;
  }
  int code;
  {
    Postmaster postmaster(config, launch, std::move(*tls), std::move(notifier), std::move(*signals),
                          std::move(*shared), std::move(*winners), std::move(listener->socket),
                          std::move(listener->description), std::move(metrics), std::move(*control),
                          owner.pg ? &*owner.pg : nullptr);
    code = postmaster.Run();
  }
  Log(LogLevel::kInfo, "close", Outcome::kSuccess,
      "resource: shared_memory | detail: segment and winners file released");
  ReleaseData(owner);
  Log(LogLevel::kInfo, "exit", code == kExitOk ? Outcome::kSuccess : Outcome::kFail,
      "exit_code: {}", code);
  return code;
}

int ReportValidConfig(const ServerConfig& config) {
  if (auto tls = LoadServerTls(config); !tls) {
    Log(LogLevel::kError, "check_config", Outcome::kFail, "error: {}", tls.error());
    return kExitConfig;
  }
  std::string text;
  for (const auto& [key, value] : ServerConfigValues(config)) {
    // The value the server would use: a derived limit says so.
    if (key == "server.max_connections" && config.max_connections == 0) {
      text += fmt::format("{} = {} (0: derived)\n", key, config.EffectiveMaxConnections());
      continue;
    }
    text += fmt::format("{} = {}\n", key, value);
  }
  std::fputs(text.c_str(), stdout);
  std::fflush(stdout);
  Log(LogLevel::kInfo, "check_config", Outcome::kSuccess, "config: {}",
      config.config_file.empty() ? "none (defaults, environment and flags)" : config.config_file);
  return kExitOk;
}

}  // namespace lottery
