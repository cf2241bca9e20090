#include "server/service_notifier.h"

#include <charconv>
#include <ctime>

#include <fmt/format.h>

#include "server/notify_socket.h"

#ifdef LOTTERY_HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace lottery {
namespace {

std::optional<std::uint64_t> ParseUnsigned(const std::map<std::string, std::string>& env,
                                           const char* name) {
  auto it = env.find(name);
  if (it == env.end()) return std::nullopt;
  const std::string& text = it->second;
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// A status text is one line of the message: a newline would start a new key.
std::string OneLine(std::string_view text) {
  std::string line(text);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return line;
}

std::uint64_t MonotonicMicros() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1000000u +
         static_cast<std::uint64_t>(ts.tv_nsec) / 1000u;
}

}  // namespace

const char* NotifyBackendName(NotifyBackend backend) {
  return backend == NotifyBackend::kLibsystemd ? "libsystemd" : "builtin";
}

std::vector<NotifyBackend> AvailableNotifyBackends() {
#ifdef LOTTERY_HAVE_LIBSYSTEMD
  return {NotifyBackend::kLibsystemd, NotifyBackend::kBuiltin};
#else
  return {NotifyBackend::kBuiltin};
#endif
}

ServiceNotifier ServiceNotifier::FromEnvironment(const std::map<std::string, std::string>& env,
                                                 pid_t self, NotifyBackend backend) {
  std::string socket;
  if (auto it = env.find("NOTIFY_SOCKET"); it != env.end()) socket = it->second;
  std::optional<std::chrono::microseconds> watchdog;
  auto usec = ParseUnsigned(env, "WATCHDOG_USEC");
  auto pid = ParseUnsigned(env, "WATCHDOG_PID");
  bool watchdog_pid_ok =
      !env.contains("WATCHDOG_PID") || (pid && *pid == static_cast<std::uint64_t>(self));
  if (usec && *usec > 0 && watchdog_pid_ok && !socket.empty()) {
    watchdog = std::chrono::microseconds(*usec);
  }
  return ServiceNotifier(std::move(socket), watchdog, backend);
}

Status ServiceNotifier::Notify(std::string_view message) {
  if (!enabled()) return Ok();
#ifdef LOTTERY_HAVE_LIBSYSTEMD
  if (backend_ == NotifyBackend::kLibsystemd) {
    std::string text(message);
    int rc = ::sd_notify(0, text.c_str());
    if (rc < 0) return FailErrno(fmt::format("sd_notify {}", socket_), -rc);
    if (rc == 0)
      return Fail(ErrorKind::kConfig, "sd_notify: NOTIFY_SOCKET is not set in the environment");
    return Ok();
  }
#endif
  return SendNotifyDatagram(socket_, message);
}

Status ServiceNotifier::Ready(std::string_view status) {
  return Notify(fmt::format("READY=1\nSTATUS={}", OneLine(status)));
}

Status ServiceNotifier::SetStatus(std::string_view status) {
  return Notify(fmt::format("STATUS={}", OneLine(status)));
}

Status ServiceNotifier::Reloading(std::string_view status) {
  // MONOTONIC_USEC lets a manager match the reload to this message
  // (Type=notify-reload requires it; Type=notify ignores it).
  return Notify(
      fmt::format("RELOADING=1\nMONOTONIC_USEC={}\nSTATUS={}", MonotonicMicros(), OneLine(status)));
}

Status ServiceNotifier::Stopping(std::string_view status) {
  return Notify(fmt::format("STOPPING=1\nSTATUS={}", OneLine(status)));
}

Status ServiceNotifier::WatchdogPing() { return Notify("WATCHDOG=1"); }

}  // namespace lottery
