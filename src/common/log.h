// The log: one line per event on stderr, written with a single write() so
// lines from the parent and its workers never interleave mid-line.
//
//   2026-11-22 13:45:52 INFO action: apuesta_recibida | result: success | cantidad: 64
//
// Under systemd, when stderr is the journal stream named by JOURNAL_STREAM,
// the line starts with its syslog priority instead of a timestamp (journald
// stamps it itself and files it under that priority):
//
//   <6>INFO action: apuesta_recibida | result: success | cantidad: 64
//
// Every line that has an action has a result of exactly success, fail or
// in_progress. Lines below the configured level are dropped before formatting.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace lottery {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

enum class Outcome { kSuccess, kFail, kInProgress };

// "DEBUG", "INFO", "WARNING", "ERROR".
const char* LogLevelName(LogLevel level);
// Case-insensitive; also accepts "WARN". std::nullopt when unknown.
std::optional<LogLevel> ParseLogLevel(std::string_view text);
const char* OutcomeName(Outcome outcome);

// How a line starts: a local timestamp, or a syslog priority for journald.
enum class LogStyle { kPlain, kJournal };

// The syslog priority of a level: 7 debug, 6 info, 4 warning, 3 error.
int SyslogPriority(LogLevel level);

// Whether `journal_stream` ("<device>:<inode>", as systemd sets
// JOURNAL_STREAM) names the file that descriptor `fd` is open on.
bool IsJournalStream(int fd, std::string_view journal_stream);

// Picks kJournal when JOURNAL_STREAM names stderr, else kPlain, and sets it.
// Each program calls it once at start.
void ConfigureLogStyleFromEnvironment();

void SetLogStyle(LogStyle style);
LogStyle CurrentLogStyle();

// Process-wide threshold; each process (parent, worker, agency) sets its own.
void SetLogLevel(LogLevel level);
LogLevel CurrentLogLevel();
inline bool LogEnabled(LogLevel level) { return level >= CurrentLogLevel(); }

// The line Log() writes ("<ts> <LEVEL> action: <a> | result: <r>[ | <fields>]\n";
// "<p>" instead of "<ts> " in the journal style), for tests only.
std::string TEST_FormatLogLine(LogLevel level, std::string_view action, Outcome outcome,
                               std::string_view fields, LogStyle style);
inline std::string TEST_FormatLogLine(LogLevel level, std::string_view action, Outcome outcome,
                                      std::string_view fields) {
  return TEST_FormatLogLine(level, action, outcome, fields, CurrentLogStyle());
}

// A value that came from outside (a peer's message, an ECHO payload, a
// document that failed validation), made safe for one log field: bytes below
// 0x20 and 0x7f become \xNN (so a value cannot break the line, move the
// terminal or smuggle a NUL), '|' becomes \x7c and '\' becomes \x5c (so it
// cannot forge a "| result: success" field), and it is cut to `max_bytes`
// with a note of how much was left out.
std::string LogSafe(std::string_view text, std::size_t max_bytes = 256);

// Lets a burst of `burst` lines through, then at most one per `interval`;
// Allow() says whether to log now and how many were held back since the last
// line logged. For one connection that keeps causing errors.
class LogLimiter {
 public:
  LogLimiter(int burst, std::chrono::milliseconds interval) : burst_(burst), interval_(interval) {}

  struct Decision {
    bool log = false;
    std::uint64_t suppressed = 0;  // lines not logged before this one
  };
  Decision Allow();

 private:
  int burst_;
  std::chrono::milliseconds interval_;
  int used_ = 0;
  std::uint64_t suppressed_ = 0;
  std::chrono::steady_clock::time_point next_{};
};

// A live status line at the bottom of a terminal (the agency's progress):
// while one is set, WriteLogLine clears it, writes the log line and draws it
// again, all in the same single write(), so log lines and the status never
// mix. "" removes it (the terminal line is cleared). Single-threaded use.
void SetLogStatusLine(std::string_view status);

// Writes one formatted line to stderr with a single write().
void WriteLogLine(LogLevel level, std::string_view action, Outcome outcome,
                  std::string_view fields);

// While one is alive, the log lines this process writes are gathered and
// written together when it ends, instead of one write() each: for a burst of
// lines about one event (the apuesta_recibida lines of a worker's group of
// stored batches). No write() carries more than kHeldLogBytes (PIPE_BUF), so
// on a pipe shared with other processes the lines still never interleave
// mid-line; a line longer than that goes out alone, after those held before
// it. Nestable (the outermost one writes); one thread per process, as the
// log is used. A process that dies while holding loses the held lines, so a
// hold spans only bookkeeping, never I/O that can block or a crash point.
inline constexpr std::size_t kHeldLogBytes = 4096;
class HeldLogLines {
 public:
  HeldLogLines();
  ~HeldLogLines();
  HeldLogLines(const HeldLogLines&) = delete;
  HeldLogLines& operator=(const HeldLogLines&) = delete;
};

// fields is a fmt format string for the "key: value | key: value" tail.
template <typename... Args>
void Log(LogLevel level, std::string_view action, Outcome outcome,
         fmt::format_string<Args...> fields, Args&&... args) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, action, outcome, fmt::format(fields, std::forward<Args>(args)...));
}

inline void Log(LogLevel level, std::string_view action, Outcome outcome) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, action, outcome, {});
}

}  // namespace lottery
