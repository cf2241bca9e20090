#include "common/log.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <regex>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace lottery {
namespace {

TEST_CASE("a log line has the documented shape") {
  std::string line =
      TEST_FormatLogLine(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: 64");
  std::regex shape(
      R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} INFO action: apuesta_recibida \| result: success \| cantidad: 64\n$)");
  CHECK(std::regex_match(line, shape));
  CHECK(TEST_FormatLogLine(LogLevel::kError, "exit", Outcome::kFail, "")
            .ends_with("ERROR action: exit | result: fail\n"));
  CHECK(TEST_FormatLogLine(LogLevel::kWarning, "x", Outcome::kInProgress, "")
            .ends_with("WARNING action: x | result: in_progress\n"));
}

TEST_CASE("a field value cannot break the one-line rule") {
  std::string line =
      TEST_FormatLogLine(LogLevel::kDebug, "receive_message", Outcome::kSuccess, "msg: a\nb\rc");
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find('\r') == std::string::npos);
}

TEST_CASE("control bytes in a field are written as escapes, never raw") {
  std::string line = TEST_FormatLogLine(LogLevel::kInfo, "receive_message", Outcome::kSuccess,
                                        std::string("msg: \x1b[31mred\x07 nul\0 del\x7f", 24));
  CHECK(line.find("\\x1b[31mred\\x07 nul\\x00 del\\x7f") != std::string::npos);
  for (char c : line.substr(0, line.size() - 1)) {
    const auto b = static_cast<unsigned char>(c);
    CHECK((b >= 0x20 && b != 0x7f));
  }
}

TEST_CASE("a peer's text cannot forge a field, and long text is cut") {
  std::string forged = LogSafe("x | result: success | agency: 1");
  CHECK(forged.find('|') == std::string::npos);
  CHECK(forged == "x \\x7c result: success \\x7c agency: 1");
  CHECK(LogSafe("a\\b") == "a\\x5cb");
  CHECK(LogSafe("caf\xc3\xa9") == "caf\xc3\xa9");  // UTF-8 kept as it is
  std::string big(1000, 'a');
  std::string cut = LogSafe(big, 64);
  CHECK(cut == std::string(64, 'a') + "...(+936 bytes)");
  CHECK(LogSafe("short", 64) == "short");
}

TEST_CASE("a limiter lets a burst through, then one line per interval with a count") {
  LogLimiter limiter(3, std::chrono::milliseconds(200));
  for (int i = 0; i < 3; ++i) CHECK(limiter.Allow().log);
  int held = 0;
  for (int i = 0; i < 50; ++i) held += limiter.Allow().log ? 0 : 1;
  CHECK(held == 50);
  std::this_thread::sleep_for(std::chrono::milliseconds(250));
  LogLimiter::Decision next = limiter.Allow();
  CHECK(next.log);
  CHECK(next.suppressed == 50);
  CHECK_FALSE(limiter.Allow().log);
}

TEST_CASE("levels parse and filter") {
  CHECK(ParseLogLevel("debug") == LogLevel::kDebug);
  CHECK(ParseLogLevel("WARN") == LogLevel::kWarning);
  CHECK(ParseLogLevel("Warning") == LogLevel::kWarning);
  CHECK_FALSE(ParseLogLevel("loud"));
  SetLogLevel(LogLevel::kWarning);
  CHECK_FALSE(LogEnabled(LogLevel::kInfo));
  CHECK(LogEnabled(LogLevel::kError));
  SetLogLevel(LogLevel::kInfo);
  CHECK(LogEnabled(LogLevel::kInfo));
  CHECK_FALSE(LogEnabled(LogLevel::kDebug));
}

TEST_CASE("the journal style starts with the syslog priority and drops the timestamp") {
  CHECK(TEST_FormatLogLine(LogLevel::kDebug, "accept", Outcome::kSuccess, "ip: 1",
                           LogStyle::kJournal) ==
        "<7>DEBUG action: accept | result: success | ip: 1\n");
  CHECK(TEST_FormatLogLine(LogLevel::kInfo, "sorteo", Outcome::kSuccess, "", LogStyle::kJournal) ==
        "<6>INFO action: sorteo | result: success\n");
  CHECK(TEST_FormatLogLine(LogLevel::kWarning, "reload", Outcome::kFail, "", LogStyle::kJournal) ==
        "<4>WARNING action: reload | result: fail\n");
  CHECK(TEST_FormatLogLine(LogLevel::kError, "listen", Outcome::kFail, "", LogStyle::kJournal) ==
        "<3>ERROR action: listen | result: fail\n");
  // The text after the prefix is the same in both styles.
  std::string plain =
      TEST_FormatLogLine(LogLevel::kInfo, "x", Outcome::kSuccess, "k: v", LogStyle::kPlain);
  CHECK(plain.substr(20) == "INFO action: x | result: success | k: v\n");
}

TEST_CASE("JOURNAL_STREAM matches only the descriptor's own device and inode") {
  testing::TempDir dir;
  std::string path = (dir.path() / "stream").string();
  int fd = ::open(path.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  std::string mine = fmt::format("{}:{}", st.st_dev, st.st_ino);
  CHECK(IsJournalStream(fd, mine));
  CHECK_FALSE(IsJournalStream(fd, fmt::format("{}:{}", st.st_dev, st.st_ino + 1)));
  CHECK_FALSE(IsJournalStream(fd, fmt::format("{}:{}", st.st_dev + 1, st.st_ino)));
  for (const char* bad : {"", ":", "8", "8:", ":12", "x:y", "8:12:3", " 8:12", "-1:5"}) {
    CAPTURE(bad);
    CHECK_FALSE(IsJournalStream(fd, bad));
  }
  CHECK_FALSE(IsJournalStream(-1, mine));
  ::close(fd);
}

TEST_CASE("the style follows JOURNAL_STREAM for stderr") {
  struct stat st {};
  REQUIRE(::fstat(STDERR_FILENO, &st) == 0);
  ::setenv("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino).c_str(), 1);
  ConfigureLogStyleFromEnvironment();
  CHECK(CurrentLogStyle() == LogStyle::kJournal);
  ::setenv("JOURNAL_STREAM", fmt::format("{}:{}", st.st_dev, st.st_ino + 7).c_str(), 1);
  ConfigureLogStyleFromEnvironment();
  CHECK(CurrentLogStyle() == LogStyle::kPlain);
  ::unsetenv("JOURNAL_STREAM");
  ConfigureLogStyleFromEnvironment();
  CHECK(CurrentLogStyle() == LogStyle::kPlain);
}

// Points stderr at one end of a SOCK_SEQPACKET pair for its lifetime, so
// that every write() to stderr arrives as one message of its own.
class StderrWrites {
 public:
  StderrWrites() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET, 0, fds) == 0);
    saved_ = ::dup(STDERR_FILENO);
    REQUIRE(::dup2(fds[1], STDERR_FILENO) == STDERR_FILENO);
    ::close(fds[1]);
    read_ = fds[0];
  }
  ~StderrWrites() {
    ::dup2(saved_, STDERR_FILENO);
    ::close(saved_);
    ::close(read_);
  }
  // The writes so far, one string each.
  std::vector<std::string> Take() {
    std::vector<std::string> writes;
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(read_, buf, sizeof buf, MSG_DONTWAIT);
      if (n <= 0) break;
      writes.emplace_back(buf, static_cast<std::size_t>(n));
    }
    return writes;
  }

 private:
  int saved_ = -1;
  int read_ = -1;
};

TEST_CASE("held lines go out together when the hold ends, in order, whole lines per write") {
  StderrWrites stderr_writes;
  SetLogLevel(LogLevel::kInfo);
  {
    HeldLogLines hold;
    for (int i = 0; i < 3; ++i) {
      Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {}", i);
    }
    CHECK(stderr_writes.Take().empty());  // nothing written while held
  }
  std::vector<std::string> writes = stderr_writes.Take();
  REQUIRE(writes.size() == 1);
  const std::string& w = writes[0];
  CHECK(std::count(w.begin(), w.end(), '\n') == 3);
  CHECK(w.find("cantidad: 0") < w.find("cantidad: 1"));
  CHECK(w.find("cantidad: 1") < w.find("cantidad: 2"));

  // Without a hold, one write per line, as before.
  Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {}", 7);
  Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {}", 8);
  CHECK(stderr_writes.Take().size() == 2);
}

TEST_CASE("no held write is larger than PIPE_BUF, and no line is split or lost") {
  StderrWrites stderr_writes;
  SetLogLevel(LogLevel::kInfo);
  const std::string long_field(kHeldLogBytes + 100, 'x');
  {
    HeldLogLines outer;
    {
      HeldLogLines inner;  // nested: only the outermost hold writes
      for (int i = 0; i < 200; ++i) {
        Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {}", i);
      }
    }
    Log(LogLevel::kInfo, "long", Outcome::kSuccess, "field: {}", long_field);
    Log(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess, "cantidad: {}", 200);
  }
  std::vector<std::string> writes = stderr_writes.Take();
  CHECK(writes.size() > 2);
  std::string all;
  int lines = 0;
  for (const std::string& w : writes) {
    REQUIRE(!w.empty());
    CHECK(w.back() == '\n');  // whole lines only
    if (w.find("action: long") == std::string::npos) {
      CHECK(w.size() <= kHeldLogBytes);
    } else {
      CHECK(std::count(w.begin(), w.end(), '\n') == 1);  // the long line alone
    }
    lines += static_cast<int>(std::count(w.begin(), w.end(), '\n'));
    all += w;
  }
  CHECK(lines == 202);
  // In the order logged.
  std::size_t at = 0;
  for (int i = 0; i < 200; ++i) {
    std::size_t next = all.find(fmt::format("cantidad: {}\n", i), at);
    REQUIRE(next != std::string::npos);
    at = next;
  }
  CHECK(all.find("action: long") > at);
  CHECK(all.find("cantidad: 200\n") > all.find("action: long"));
}

}  // namespace
}  // namespace lottery
