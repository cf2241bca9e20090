// ServiceNotifier tells the service manager (systemd, Type=notify) how the
// server is doing: READY=1 once it serves, STATUS= lines as the round goes,
// RELOADING=1 / STOPPING=1, and WATCHDOG=1 keep-alives. Without
// NOTIFY_SOCKET every call does nothing and succeeds.
//
// Only the parent process notifies: the manager accepts messages from the
// main PID (NotifyAccess=main), and workers come and go.
//
// Two backends speak the same protocol: libsystemd's sd_notify() when the
// build found libsystemd (meson option `libsystemd`), and the built-in
// datagram writer (notify_socket.h), always compiled so both can be tested.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lottery {

enum class NotifyBackend { kLibsystemd, kBuiltin };

const char* NotifyBackendName(NotifyBackend backend);
// The backends this build has, preferred first.
std::vector<NotifyBackend> AvailableNotifyBackends();

class ServiceNotifier {
 public:
  // Reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from `env` for the
  // process `self`. The libsystemd backend reads NOTIFY_SOCKET from the real
  // environment, which must then agree with `env`.
  static ServiceNotifier FromEnvironment(const std::map<std::string, std::string>& env, pid_t self,
                                         NotifyBackend backend);

  bool enabled() const { return !socket_.empty(); }
  NotifyBackend backend() const { return backend_; }
  // Set when the manager expects WATCHDOG=1 pings (send one every half of it).
  std::optional<std::chrono::microseconds> watchdog_interval() const { return watchdog_; }

  // Sends one message ("KEY=VALUE" lines).
  Status Notify(std::string_view message);

  Status Ready(std::string_view status);
  Status SetStatus(std::string_view status);
  Status Reloading(std::string_view status);
  Status Stopping(std::string_view status);
  Status WatchdogPing();

 private:
  ServiceNotifier(std::string socket, std::optional<std::chrono::microseconds> watchdog,
                  NotifyBackend backend)
      : socket_(std::move(socket)), watchdog_(watchdog), backend_(backend) {}

  std::string socket_;
  std::optional<std::chrono::microseconds> watchdog_;
  NotifyBackend backend_;
};

}  // namespace lottery
