#include "server/config_reload.h"

#include <doctest/doctest.h>

#include <set>
#include <string>

namespace lottery {
namespace {

TEST_CASE("a reload reports each changed key, reloadable or not") {
  ServerConfig running;
  ServerConfig loaded = running;
  CHECK(DiffServerConfigs(running, loaded).empty());
  loaded.log_level = LogLevel::kDebug;
  loaded.port = 12346;
  loaded.read_timeout = Seconds(2.5);
  auto changes = DiffServerConfigs(running, loaded);
  REQUIRE(changes.size() == 3);
  // In --help order: port, read_timeout, then log.level.
  CHECK(changes[0].key == "server.port");
  CHECK(changes[0].old_value == "12345");
  CHECK(changes[0].new_value == "12346");
  CHECK_FALSE(changes[0].reloadable);
  CHECK(changes[1].key == "server.read_timeout");
  CHECK(changes[1].old_value == "60s");
  CHECK(changes[1].new_value == "2.5s");
  CHECK(changes[1].reloadable);
  CHECK(changes[2].key == "log.level");
  CHECK(changes[2].new_value == "DEBUG");
  CHECK(changes[2].reloadable);
}

TEST_CASE("only the reloadable keys are applied") {
  ServerConfig running;
  ServerConfig loaded;
  loaded.address = "127.0.0.1";
  loaded.port = 1;
  loaded.agencies = 9;
  loaded.storage_path = "elsewhere.csv";
  loaded.winning_number = 1;
  loaded.log_level = LogLevel::kError;
  loaded.read_timeout = Seconds(1);
  loaded.listen_backlog = 7;
  loaded.max_connections = 3;
  loaded.shutdown_timeout = Seconds(9);
  loaded.hello_timeout = Seconds(2);
  loaded.idle_timeout = Seconds(4);
  loaded.max_pending = 5;
  loaded.tls.crl = "revoked.pem";
  loaded.tls.mode = TlsMode::kOff;
  ServerConfig next = ApplyReloadable(running, loaded);
  CHECK(next.address == running.address);
  CHECK(next.port == running.port);
  CHECK(next.agencies == running.agencies);
  CHECK(next.storage_path == running.storage_path);
  CHECK(next.winning_number == running.winning_number);
  CHECK(next.log_level == LogLevel::kError);
  CHECK(next.read_timeout == Seconds(1));
  CHECK(next.listen_backlog == 7);
  CHECK(next.max_connections == 3);
  CHECK(next.shutdown_timeout == Seconds(9));
  CHECK(next.hello_timeout == Seconds(2));
  CHECK(next.idle_timeout == Seconds(4));
  CHECK(next.max_pending == 5);
  // What ApplyReloadable takes is exactly what IsReloadableKey says.
  std::set<std::string> still_different;
  for (const ConfigChange& d : DiffServerConfigs(next, loaded)) still_different.insert(d.key);
  auto changes = DiffServerConfigs(running, loaded);
  CHECK(changes.size() == 15);
  for (const ConfigChange& c : changes) {
    CAPTURE(c.key);
    bool applied = !still_different.contains(c.key);
    CHECK(applied == c.reloadable);
  }
}

TEST_CASE("every reloadable key is a real key") {
  std::set<std::string> keys;
  for (const auto& [key, value] : ServerConfigValues(ServerConfig{})) keys.insert(key);
  int reloadable = 0;
  for (const std::string& key : keys) reloadable += IsReloadableKey(key) ? 1 : 0;
  CHECK(reloadable == 13);
  CHECK(IsReloadableKey("tls.crl"));
  CHECK_FALSE(IsReloadableKey("tls.mode"));
  CHECK_FALSE(IsReloadableKey("server.port"));
  CHECK_FALSE(IsReloadableKey("storage.path"));
  CHECK_FALSE(IsReloadableKey("server.agencies"));
  CHECK_FALSE(IsReloadableKey("nonsense"));
}

}  // namespace
}  // namespace lottery

namespace lottery {
namespace {

TEST_CASE("a DSN's password never reaches a log line or --check-config") {
  CHECK(RedactDsn("host=db port=5432 password=s3cret user=l") ==
        "host=db port=5432 password=*** user=l");
  CHECK(RedactDsn("host=db password='a b' user=l") == "host=db password=*** user=l");
  CHECK(RedactDsn("postgresql://lottery:s3cret@db1,db2/lottery?target_session_attrs=read-write") ==
        "postgresql://lottery:***@db1,db2/lottery?target_session_attrs=read-write");
  CHECK(RedactDsn("postgresql://db/lottery?user=l&password=s3cret&sslmode=require") ==
        "postgresql://db/lottery?user=l&password=***&sslmode=require");
  CHECK(RedactDsn("host=db user=l") == "host=db user=l");
  auto config = LoadServerConfig({"lottery-server", "--storage-backend", "postgresql",
                                  "--storage-dsn", "host=db password=s3cret", "--tls-mode", "off"},
                                 {});
  REQUIRE(config);
  for (const auto& [key, value] : ServerConfigValues(*config)) {
    CHECK(value.find("s3cret") == std::string::npos);
  }
}

TEST_CASE("the postgresql backend needs a DSN, and server.standby is a boolean") {
  auto missing = LoadServerConfig(
      {"lottery-server", "--storage-backend", "postgresql", "--tls-mode", "off"}, {});
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("storage.postgresql_dsn") != std::string::npos);
  auto bare =
      LoadServerConfig({"lottery-server", "--standby", "--port", "1", "--tls-mode", "off"}, {});
  REQUIRE(bare);
  CHECK(bare->standby);
  CHECK(bare->port == 1);
  auto env = LoadServerConfig({"lottery-server", "--tls-mode", "off"}, {{"SERVER_STANDBY", "no"}});
  REQUIRE(env);
  CHECK_FALSE(env->standby);
  CHECK_FALSE(
      LoadServerConfig({"lottery-server", "--tls-mode", "off"}, {{"SERVER_STANDBY", "maybe"}}));
}

}  // namespace
}  // namespace lottery
