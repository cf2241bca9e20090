#include "ctl/ctl_options.h"

#include <doctest/doctest.h>

namespace lottery {
namespace {

Result<CtlOptions> Parse(std::vector<std::string> args, std::map<std::string, std::string> env = {
                                                            {"SERVER_CONTROL_SOCKET", "/x.sock"}}) {
  args.insert(args.begin(), "lotteryctl");
  return ParseCtlOptions(args, env);
}

}  // namespace

TEST_CASE("options anywhere, one command, a round number for show and verify") {
  auto status = Parse({"status"});
  REQUIRE(status);
  CHECK(status->command == "status");
  CHECK(status->socket == "/x.sock");
  CHECK_FALSE(status->json);
  auto show = Parse({"--socket", "/s", "show", "3", "--winners", "--json"});
  REQUIRE(show);
  CHECK(show->socket == "/s");
  CHECK(show->round == 3);
  CHECK(show->winners);
  CHECK(show->json);
  CHECK(Parse({"--socket=/t", "verify", "12"})->socket == "/t");
  CHECK(Parse({"--help"})->help);
}

TEST_CASE("usage errors") {
  for (std::vector<std::string> bad : {std::vector<std::string>{},
                                       {"frobnicate"},
                                       {"status", "1"},
                                       {"show"},
                                       {"show", "x"},
                                       {"show", "0"},
                                       {"verify", "1", "2"},
                                       {"--bogus", "status"},
                                       {"status", "--socket"},
                                       {"rounds", "--winners"},
                                       {"--storage-backend", "sqlite", "rounds"},
                                       {"rounds", "--storage-dsn"},
                                       {"rounds", "--storage-backend"}}) {
    auto r = Parse(bad);
    CHECK_FALSE(r);
    if (!r) CHECK(r.error().kind == ErrorKind::kInvalidInput);
  }
}

TEST_CASE("the storage backend and DSN: flags, else the server's environment variables") {
  auto none = Parse({"rounds"});
  REQUIRE(none);
  CHECK(none->storage_backend.empty());  // ask the server
  CHECK(none->storage_dsn.empty());
  const std::map<std::string, std::string> env{{"SERVER_CONTROL_SOCKET", "/x.sock"},
                                               {"SERVER_STORAGE_BACKEND", "postgresql"},
                                               {"SERVER_STORAGE_DSN", "host=db dbname=lottery"}};
  auto from_env = Parse({"rounds"}, env);
  REQUIRE(from_env);
  CHECK(from_env->storage_backend == "postgresql");
  CHECK(from_env->storage_dsn == "host=db dbname=lottery");
  auto flags = Parse({"--storage-backend", "file", "--storage-dsn=host=other", "verify", "2"}, env);
  REQUIRE(flags);
  CHECK(flags->storage_backend == "file");
  CHECK(flags->storage_dsn == "host=other");
  CHECK(Parse({"--storage-backend=postgresql", "show", "1"})->storage_backend == "postgresql");
  auto bad_env = Parse({"rounds"}, {{"SERVER_STORAGE_BACKEND", "tape"}});
  REQUIRE_FALSE(bad_env);
  CHECK(bad_env.error().kind == ErrorKind::kInvalidInput);
}

TEST_CASE("the default socket follows the server's rule") {
  CHECK(DefaultCtlSocket({{"SERVER_CONTROL_SOCKET", "/a.sock"}, {"RUNTIME_DIRECTORY", "/run/x"}}) ==
        "/a.sock");
  CHECK(DefaultCtlSocket({{"RUNTIME_DIRECTORY", "/run/x"}}) == "/run/x/control.sock");
  CHECK(DefaultCtlSocket({{"RUNTIME_DIRECTORY", "/run/x"}, {"SERVER_STORAGE_PATH", "/d/b.csv"}}) ==
        "/run/x/control.sock");
}

}  // namespace lottery
