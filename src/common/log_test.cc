#include "common/log.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>

#include "common/test_util.h"

namespace lottery {
namespace {

TEST_CASE("a log line has the documented shape") {
  std::string line = FormatLogLine(LogLevel::kInfo, "apuesta_recibida", Outcome::kSuccess,
                                   "cantidad: 64");
  std::regex shape(
      R"(^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} INFO action: apuesta_recibida \| result: success \| cantidad: 64\n$)");
  CHECK(std::regex_match(line, shape));
  CHECK(FormatLogLine(LogLevel::kError, "exit", Outcome::kFail, "").ends_with(
      "ERROR action: exit | result: fail\n"));
  CHECK(FormatLogLine(LogLevel::kWarning, "x", Outcome::kInProgress, "").ends_with(
      "WARNING action: x | result: in_progress\n"));
}

TEST_CASE("a field value cannot break the one-line rule") {
  std::string line = FormatLogLine(LogLevel::kDebug, "receive_message", Outcome::kSuccess,
                                   "msg: a\nb\rc");
  CHECK(line.find('\n') == line.size() - 1);
  CHECK(line.find('\r') == std::string::npos);
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
  CHECK(FormatLogLine(LogLevel::kDebug, "accept", Outcome::kSuccess, "ip: 1", LogStyle::kJournal) ==
        "<7>DEBUG action: accept | result: success | ip: 1\n");
  CHECK(FormatLogLine(LogLevel::kInfo, "sorteo", Outcome::kSuccess, "", LogStyle::kJournal) ==
        "<6>INFO action: sorteo | result: success\n");
  CHECK(FormatLogLine(LogLevel::kWarning, "reload", Outcome::kFail, "", LogStyle::kJournal) ==
        "<4>WARNING action: reload | result: fail\n");
  CHECK(FormatLogLine(LogLevel::kError, "listen", Outcome::kFail, "", LogStyle::kJournal) ==
        "<3>ERROR action: listen | result: fail\n");
  // The text after the prefix is the same in both styles.
  std::string plain = FormatLogLine(LogLevel::kInfo, "x", Outcome::kSuccess, "k: v", LogStyle::kPlain);
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

}  // namespace
}  // namespace lottery
