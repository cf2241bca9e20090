#include "log.h"

#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <ctime>

namespace lottery {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};

}  // namespace

const char* LogLevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "DEBUG";
    case LogLevel::kInfo: return "INFO";
    case LogLevel::kWarning: return "WARNING";
    case LogLevel::kError: return "ERROR";
  }
  return "INFO";
}

std::optional<LogLevel> ParseLogLevel(std::string_view text) {
  std::string upper;
  for (char c : text) upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper == "DEBUG") return LogLevel::kDebug;
  if (upper == "INFO") return LogLevel::kInfo;
  if (upper == "WARNING" || upper == "WARN") return LogLevel::kWarning;
  if (upper == "ERROR") return LogLevel::kError;
  return std::nullopt;
}

const char* OutcomeName(Outcome outcome) {
  switch (outcome) {
    case Outcome::kSuccess: return "success";
    case Outcome::kFail: return "fail";
    case Outcome::kInProgress: return "in_progress";
  }
  return "fail";
}

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
LogLevel CurrentLogLevel() { return g_level.load(std::memory_order_relaxed); }

std::string FormatLogLine(LogLevel level, std::string_view action, Outcome outcome,
                          std::string_view fields) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  std::string line = fmt::format("{} {} action: {} | result: {}", stamp, LogLevelName(level),
                                 action, OutcomeName(outcome));
  if (!fields.empty()) {
    line += " | ";
    // A field value must not break the one-line-per-event rule.
    for (char c : fields) line += (c == '\n' || c == '\r') ? ' ' : c;
  }
  line += '\n';
  return line;
}

void WriteLogLine(LogLevel level, std::string_view action, Outcome outcome,
                  std::string_view fields) {
  std::string line = FormatLogLine(level, action, outcome, fields);
  const char* p = line.data();
  std::size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(STDERR_FILENO, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // Nowhere left to report a failing log.
    }
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace lottery
