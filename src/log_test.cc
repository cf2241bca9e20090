#include "log.h"

#include <doctest/doctest.h>

#include <regex>

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

}  // namespace
}  // namespace lottery
