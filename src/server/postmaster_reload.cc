// The Postmaster's SIGHUP: the configuration and the certificates read
// again, the reloadable settings applied and published to the workers, the
// others reported as needing a restart (docs/SYSTEMD.md). A reload that
// fails keeps everything as it ran.
#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "server/config_reload.h"
#include "server/postmaster.h"
#include "server/round_status.h"
#include "server/server_tls.h"

namespace lottery {
namespace {

struct ChangeCounts {
  int applied = 0;
  int ignored = 0;
};

// One line per setting that differs between `running` and `loaded`.
ChangeCounts LogChanges(const ServerConfig& running, const ServerConfig& loaded) {
  ChangeCounts counts;
  for (const ConfigChange& c : DiffServerConfigs(running, loaded)) {
    if (c.reloadable) {
      ++counts.applied;
      Log(LogLevel::kInfo, "reload", Outcome::kSuccess, "key: {} | old: {} | new: {}", c.key,
          c.old_value, c.new_value);
    } else {
      ++counts.ignored;
      Log(LogLevel::kWarning, "reload", Outcome::kFail,
          "key: {} | old: {} | new: {} | detail: ignored, needs a restart", c.key, c.old_value,
          c.new_value);
    }
  }
  return counts;
}

}  // namespace

void Postmaster::PublishRuntimeSettings() {
  RuntimeSettings settings;
  settings.log_level = config_.log_level;
  settings.read_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.read_timeout).count();
  settings.hello_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.hello_timeout).count();
  settings.idle_timeout_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(config_.idle_timeout).count();
  PublishSettings(shared_.state(), settings);
}

void Postmaster::Reload() {
  Notify(notifier_.Reloading("reloading the configuration"));
  Log(LogLevel::kInfo, "reload", Outcome::kInProgress, "config: {}",
      config_.config_file.empty() ? "none (flags and environment only)" : config_.config_file);
  auto loaded = LoadServerConfig(launch_.argv, launch_.env);
  if (!loaded) {
    Log(LogLevel::kError, "reload", Outcome::kFail,
        "error: {} | detail: keeping the running configuration", loaded.error().message);
    NotifyReady();
    return;
  }
  ServerConfig next = ApplyReloadable(config_, *loaded);
  // Certificates, key and revocation list are read again even when their
  // paths did not change: rotation replaces the files in place.
  auto tls = LoadServerTls(next);
  if (!tls) {
    Log(LogLevel::kError, "reload", Outcome::kFail,
        "error: {} | detail: keeping the running configuration and certificates", tls.error());
    NotifyReady();
    return;
  }
  if (auto limit = CheckConnectionLimit(next); !limit) {
    Log(LogLevel::kError, "reload", Outcome::kFail,
        "error: {} | detail: keeping the running configuration", limit.error().message);
    NotifyReady();
    return;
  }
  const ChangeCounts changes = LogChanges(config_, *loaded);
  if (next.listen_backlog != config_.listen_backlog &&
      ::listen(listener_.get(), next.listen_backlog) != 0) {
    // The old backlog stays in force; nothing else depends on it.
    Log(LogLevel::kWarning, "reload", Outcome::kFail, "key: server.listen_backlog | error: {}",
        std::strerror(errno));
  }
  config_ = next;
  tls_ = std::move(*tls);
  if (tls_)
    Log(LogLevel::kInfo, "reload", Outcome::kSuccess, "tls: reloaded | {}",
        DescribeServerTls(config_));
  // The last line of a reload says what it did (docs/SYSTEMD.md).
  Log(LogLevel::kInfo, "reload", Outcome::kSuccess, "applied: {} | ignored: {}", changes.applied,
      changes.ignored);
  SetLogLevel(config_.log_level);
  PublishRuntimeSettings();
  NotifyReady();
}

void Postmaster::NotifyReady() {
  Notify(notifier_.Ready(FormatRoundStatus(ReadRoundSummary(shared_.state()))));
}

}  // namespace lottery
