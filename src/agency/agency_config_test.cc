// server.address: one address or several, separated by commas.
#include "agency/agency_config.h"

#include <doctest/doctest.h>

#include <map>
#include <string>

namespace lottery {
namespace {

const std::map<std::string, std::string> kPlain = {{"CLI_TLS_MODE", "off"}};

TEST_CASE("one address parses as before") {
  auto one = ParseServerAddresses("server:12345");
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK((*one)[0].host == "server");
  CHECK((*one)[0].port == 12345);
  auto v6 = ParseServerAddresses("[::1]:7");
  REQUIRE(v6);
  CHECK((*v6)[0].host == "::1");
  CHECK((*v6)[0].port == 7);
}

TEST_CASE("several addresses keep their order; spaces around commas are allowed") {
  auto list = ParseServerAddresses("10.0.0.1:1, lottery-b:2 ,[::1]:3");
  REQUIRE_MESSAGE(list, list.error().message);
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].host == "10.0.0.1");
  CHECK((*list)[0].port == 1);
  CHECK((*list)[1].host == "lottery-b");
  CHECK((*list)[1].port == 2);
  CHECK((*list)[2].host == "::1");
  CHECK((*list)[2].port == 3);
}

TEST_CASE("an empty or bad element is refused, naming it") {
  for (const char* bad : {"", " ", "a:1,", ",a:1", "a:1,,b:2", "a:1, ,b:2"}) {
    auto parsed = ParseServerAddresses(bad);
    CHECK_MESSAGE(!parsed, std::string(bad));
    if (!parsed) CHECK(parsed.error().message.find("empty") != std::string::npos);
  }
  for (const char* bad : {"a:1,b", "a:1,b:0", "a:1,b:70000", "[::1:3"}) {
    auto parsed = ParseServerAddresses(bad);
    CHECK_MESSAGE(!parsed, std::string(bad));
  }
  auto second = ParseServerAddresses("a:1,b:x");
  REQUIRE_FALSE(second);
  CHECK(second.error().message.find("address 2") != std::string::npos);
}

TEST_CASE("the flag, the environment and the file take a list") {
  auto flag = LoadAgencyConfig({"a", "--server", "a:1,b:2"}, kPlain);
  REQUIRE_MESSAGE(flag, flag.error().message);
  CHECK(flag->server_address == "a:1,b:2");
  REQUIRE(flag->ServerAddresses().size() == 2);
  CHECK(flag->ServerAddresses()[1].host == "b");

  auto env = kPlain;
  env["CLI_SERVER_ADDRESS"] = "a:1 , b:2";
  auto from_env = LoadAgencyConfig({"a"}, env);
  REQUIRE_MESSAGE(from_env, from_env.error().message);
  CHECK(from_env->ServerAddresses().size() == 2);

  env["CLI_SERVER_ADDRESS"] = "a:1,";
  auto bad_env = LoadAgencyConfig({"a"}, env);
  REQUIRE_FALSE(bad_env);
  CHECK(bad_env.error().kind == ConfigErrorKind::kConfig);
  CHECK(bad_env.error().message.find("CLI_SERVER_ADDRESS") != std::string::npos);
  CHECK_FALSE(LoadAgencyConfig({"a", "--server", "a:1,,b:2"}, kPlain));
}

TEST_CASE("the certificate's name is the host of each address unless tls.server_name is set") {
  auto c = LoadAgencyConfig({"a", "--server", "a:1,b:2,a:3"}, kPlain);
  REQUIRE(c);
  CHECK(c->ServerNameFor(c->ServerAddresses()[0]) == "a");
  CHECK(c->ServerNameFor(c->ServerAddresses()[1]) == "b");
  CHECK(c->ServerName() == "a,b");
  auto named =
      LoadAgencyConfig({"a", "--server", "a:1,b:2", "--tls-server-name", "lottery"}, kPlain);
  REQUIRE(named);
  CHECK(named->ServerNameFor(named->ServerAddresses()[1]) == "lottery");
  CHECK(named->ServerName() == "lottery");
}

}  // namespace
}  // namespace lottery
