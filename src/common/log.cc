#include "common/log.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <utility>

namespace lottery {
namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogStyle> g_style{LogStyle::kPlain};

// A byte written as \xNN, so a log line stays one line of printable text.
void AppendEscaped(std::string& out, unsigned char byte) { out += fmt::format("\\x{:02x}", byte); }

bool IsControl(unsigned char byte) { return byte < 0x20 || byte == 0x7f; }

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

int SyslogPriority(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return 7;    // LOG_DEBUG
    case LogLevel::kInfo: return 6;     // LOG_INFO
    case LogLevel::kWarning: return 4;  // LOG_WARNING
    case LogLevel::kError: return 3;    // LOG_ERR
  }
  return 6;
}

bool IsJournalStream(int fd, std::string_view journal_stream) {
  auto colon = journal_stream.find(':');
  if (colon == std::string_view::npos) return false;
  std::uint64_t dev = 0;
  std::uint64_t ino = 0;
  auto parse = [](std::string_view text, std::uint64_t& out) {
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return !text.empty() && ec == std::errc() && end == text.data() + text.size();
  };
  if (!parse(journal_stream.substr(0, colon), dev) ||
      !parse(journal_stream.substr(colon + 1), ino)) {
    return false;
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return static_cast<std::uint64_t>(st.st_dev) == dev &&
         static_cast<std::uint64_t>(st.st_ino) == ino;
}

void ConfigureLogStyleFromEnvironment() {
  // systemd sets JOURNAL_STREAM for the service's own stderr; a child that
  // inherits the variable but writes elsewhere keeps the plain style.
  const char* stream = std::getenv("JOURNAL_STREAM");
  SetLogStyle(stream != nullptr && IsJournalStream(STDERR_FILENO, stream) ? LogStyle::kJournal
                                                                          : LogStyle::kPlain);
}

void SetLogStyle(LogStyle style) { g_style.store(style, std::memory_order_relaxed); }
LogStyle CurrentLogStyle() { return g_style.load(std::memory_order_relaxed); }

void SetLogLevel(LogLevel level) { g_level.store(level, std::memory_order_relaxed); }
LogLevel CurrentLogLevel() { return g_level.load(std::memory_order_relaxed); }

namespace {

// One line as Log() writes it (log.h says the shape).
std::string FormatLine(LogLevel level, std::string_view action, Outcome outcome,
                       std::string_view fields, LogStyle style) {
  std::string line;
  if (style == LogStyle::kJournal) {
    line = fmt::format("<{}>", SyslogPriority(level));
  } else {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    localtime_r(&now, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S ", &tm);
    line = stamp;
  }
  line +=
      fmt::format("{} action: {} | result: {}", LogLevelName(level), action, OutcomeName(outcome));
  if (!fields.empty()) {
    line += " | ";
    // A field value must not break the one-line-per-event rule, nor send
    // control sequences to a terminal: control bytes are written as \xNN.
    for (char c : fields) {
      if (IsControl(static_cast<unsigned char>(c))) {
        AppendEscaped(line, static_cast<unsigned char>(c));
      } else {
        line += c;
      }
    }
  }
  line += '\n';
  return line;
}

}  // namespace

std::string TEST_FormatLogLine(LogLevel level, std::string_view action, Outcome outcome,
                               std::string_view fields, LogStyle style) {
  return FormatLine(level, action, outcome, fields, style);
}

std::string LogSafe(std::string_view text, std::size_t max_bytes) {
  std::string out;
  const std::size_t keep = std::min(text.size(), max_bytes);
  out.reserve(keep + 16);
  for (std::size_t i = 0; i < keep; ++i) {
    const auto b = static_cast<unsigned char>(text[i]);
    if (IsControl(b) || b == '|' || b == '\\') {
      AppendEscaped(out, b);
    } else {
      out += static_cast<char>(b);
    }
  }
  if (keep < text.size()) out += fmt::format("...(+{} bytes)", text.size() - keep);
  return out;
}

LogLimiter::Decision LogLimiter::Allow() {
  const auto now = std::chrono::steady_clock::now();
  if (used_ < burst_) {
    ++used_;
    next_ = now + interval_;
    return Decision{true, std::exchange(suppressed_, 0)};
  }
  if (now >= next_) {
    next_ = now + interval_;
    return Decision{true, std::exchange(suppressed_, 0)};
  }
  ++suppressed_;
  return Decision{false, 0};
}

namespace {

// The status line on the terminal now ("" when none); see SetLogStatusLine.
std::string& StatusLine() {
  static std::string status;
  return status;
}

// "\r" to the line's start, then "erase to end of line" (ECMA-48 EL).
constexpr std::string_view kClearLine = "\r\033[K";

static_assert(kHeldLogBytes <= PIPE_BUF, "a held write must stay atomic on a pipe");

// Lines held by HeldLogLines, and how many holds are open.
std::string& HeldBytes() {
  static std::string held;
  return held;
}
int g_holds = 0;

void WriteStderr(std::string_view bytes) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
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

}  // namespace

void SetLogStatusLine(std::string_view status) {
  std::string& current = StatusLine();
  if (status == current) return;
  std::string out(kClearLine);
  out.append(status);
  current.assign(status);
  WriteStderr(out);
}

HeldLogLines::HeldLogLines() { ++g_holds; }

HeldLogLines::~HeldLogLines() {
  if (--g_holds > 0) return;
  std::string& held = HeldBytes();
  if (!held.empty()) WriteStderr(held);
  held.clear();
}

void WriteLogLine(LogLevel level, std::string_view action, Outcome outcome,
                  std::string_view fields) {
  std::string line = FormatLine(level, action, outcome, fields, CurrentLogStyle());
  if (const std::string& status = StatusLine(); !status.empty()) {
    line.insert(0, kClearLine);
    line.append(status);
  }
  if (g_holds > 0) {
    std::string& held = HeldBytes();
    if (held.size() + line.size() > kHeldLogBytes && !held.empty()) {
      WriteStderr(held);
      held.clear();
    }
    if (line.size() <= kHeldLogBytes) {
      held += line;
      return;
    }
  }
  WriteStderr(line);
}

}  // namespace lottery
