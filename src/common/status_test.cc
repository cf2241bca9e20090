#include "common/status.h"

#include <doctest/doctest.h>

#include <cerrno>
#include <string>

namespace lottery {
namespace {

Status Refuse(ErrorKind kind) { return Fail(kind, "refused"); }

TEST_CASE("an error carries its kind; a failed system call is kIo with its errno") {
  auto io = FailErrno("open bets.csv", ENOSPC);
  CHECK(io.error().kind == ErrorKind::kIo);
  CHECK(io.error().sys_errno == ENOSPC);
  CHECK(io.error().message.rfind("open bets.csv: ", 0) == 0);
  for (ErrorKind kind : {ErrorKind::kCorruptData, ErrorKind::kInvalidInput, ErrorKind::kProtocol,
                         ErrorKind::kConfig, ErrorKind::kInternal}) {
    Status s = Refuse(kind);
    REQUIRE_FALSE(s);
    CHECK(s.error().kind == kind);
    CHECK(s.error().sys_errno == 0);
  }
}

}  // namespace
}  // namespace lottery
