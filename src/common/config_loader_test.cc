#include "agency/agency_config.h"
#include "server/server_config.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/test_util.h"

namespace lottery {
namespace {

using Env = std::map<std::string, std::string>;
using Args = std::vector<std::string>;
// TLS is required by default; the tests of other keys run without it.
const Env kPlain{{"SERVER_TLS_MODE", "off"}, {"CLI_TLS_MODE", "off"}};

Env Plain(Env env) {
  env.insert(kPlain.begin(), kPlain.end());
  return env;
}

std::string WriteFile(const testing::TempDir& dir, const std::string& name,
                      const std::string& text) {
  std::string path = dir.File(name);
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST_CASE("without certificate files, the default (tls.mode = required) refuses to start") {
  auto s = LoadServerConfig({"lottery-server"}, {});
  REQUIRE_FALSE(s);
  CHECK(s.error().kind == ConfigErrorKind::kConfig);
  for (const char* key : {"tls.certificate", "tls.private_key", "tls.client_ca", "gen_certs.py",
                          "tls.mode = \"off\""}) {
    CHECK_MESSAGE(s.error().message.find(key) != std::string::npos, key);
  }
  auto a = LoadAgencyConfig({"lottery-agency"}, {});
  REQUIRE_FALSE(a);
  CHECK(a.error().message.find("tls.server_ca") != std::string::npos);
  // Only the missing ones are named.
  auto some = LoadServerConfig({"s", "--tls-cert", "c.pem", "--tls-client-ca", "ca.pem"}, {});
  REQUIRE_FALSE(some);
  CHECK(some.error().message.find("but tls.private_key is not set") != std::string::npos);
  auto all = LoadServerConfig({"s", "--tls-cert", "c.pem", "--tls-key", "k.pem"},
                              {{"SERVER_TLS_CLIENT_CA", "ca.pem"}});
  REQUIRE_MESSAGE(all, all.error().message);
  CHECK(all->tls.mode == TlsMode::kRequired);
  CHECK(all->tls.ca == "ca.pem");
  // The agency's file names may carry {id}.
  auto agency =
      LoadAgencyConfig({"a", "--id", "7", "--tls-cert", "certs/agency-{id}.pem", "--tls-key",
                        "certs/agency-{id}.key", "--tls-server-ca", "ca.pem"},
                       {});
  REQUIRE_MESSAGE(agency, agency.error().message);
  CHECK(agency->tls.certificate == "certs/agency-7.pem");
  CHECK(agency->tls.private_key == "certs/agency-7.key");
  CHECK(agency->ServerName() == "127.0.0.1");
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off", "--server", "server:1"}, {})->ServerName() ==
        "server");
  CHECK_FALSE(LoadAgencyConfig({"a", "--tls-mode", "maybe"}, {}));
}

TEST_CASE("defaults apply when there is no file, variable or flag") {
  auto s = LoadServerConfig({"lottery-server"}, kPlain);
  REQUIRE(s);
  CHECK(s->port == 12345);
  CHECK(s->agencies == 5);
  CHECK(s->winning_number == 7574);
  CHECK(s->log_level == LogLevel::kInfo);
  CHECK(s->config_file.empty());
  auto a = LoadAgencyConfig({"lottery-agency"}, kPlain);
  REQUIRE(a);
  CHECK(a->id == 1);
  CHECK(a->mode == AgencyMode::kLottery);
  CHECK(a->batch_max_amount == 100);
  CHECK(a->server_address == "127.0.0.1:12345");
}

TEST_CASE("the shipped conf files load and equal the built-in defaults") {
  auto root = testing::SourceRoot();
  auto s = LoadServerConfig({"lottery-server", "--config", (root / "conf/server.toml").string()},
                            kPlain);
  REQUIRE_MESSAGE(s, s.error().message);
  ServerConfig d;
  d.tls.mode = TlsMode::kOff;  // as kPlain says; the file keeps the default
  CHECK(s->address == d.address);
  CHECK(s->port == d.port);
  CHECK(s->listen_backlog == d.listen_backlog);
  CHECK(s->agencies == d.agencies);
  CHECK(s->read_timeout == d.read_timeout);
  CHECK(s->shutdown_timeout == d.shutdown_timeout);
  CHECK(s->storage_path == d.storage_path);
  CHECK(s->winning_number == d.winning_number);
  CHECK(s->log_level == d.log_level);
  CHECK(s->max_connections == d.max_connections);
  // The files' paths have no default: the shipped file names where the
  // packages and images put them.
  CHECK(s->tls.certificate == "/etc/lottery/tls/server.pem");
  CHECK(s->tls.private_key == "/etc/lottery/tls/server.key");
  CHECK(s->tls.ca == "/etc/lottery/tls/ca.pem");
  CHECK(s->tls.crl == "/etc/lottery/tls/crl.pem");
  d.tls = s->tls;
  d.tls.mode = TlsMode::kOff;
  // Every other key of the file is a documented key with the default value.
  CHECK(ServerConfigValues(*s) == ServerConfigValues(d));
  auto a = LoadAgencyConfig({"lottery-agency", "--config", (root / "conf/client.toml").string()},
                            kPlain);
  REQUIRE_MESSAGE(a, a.error().message);
  AgencyConfig e;
  e.tls.mode = TlsMode::kOff;
  CHECK(a->id == e.id);
  CHECK(a->mode == e.mode);
  CHECK(a->dataset == e.dataset);
  CHECK(a->server_address == e.server_address);
  CHECK(a->connect_timeout == e.connect_timeout);
  CHECK(a->read_timeout == e.read_timeout);
  CHECK(a->loop_amount == e.loop_amount);
  CHECK(a->loop_period == e.loop_period);
  CHECK(a->batch_max_amount == e.batch_max_amount);
  CHECK(a->batch_window == e.batch_window);
  CHECK(a->log_level == e.log_level);
  CHECK(a->tls.certificate == "/etc/lottery/tls/agency-1.pem");
  CHECK(a->tls.ca == "/etc/lottery/tls/ca.pem");
  CHECK(a->ServerName() == "server");
}

TEST_CASE("file < environment < flags, key by key") {
  testing::TempDir dir;
  std::string file = WriteFile(dir, "server.toml",
                               "[server]\nport = 2000\nlisten_backlog = 7\nagencies = 3\n"
                               "[log]\nlevel = \"DEBUG\"\n[storage]\npath = \"/tmp/x.csv\"\n");
  auto only_file = LoadServerConfig({"s", "--config", file}, kPlain);
  REQUIRE(only_file);
  CHECK(only_file->port == 2000);
  CHECK(only_file->listen_backlog == 7);
  CHECK(only_file->agencies == 3);
  CHECK(only_file->log_level == LogLevel::kDebug);
  CHECK(only_file->config_file == file);

  Env env{{"SERVER_PORT", "3000"}, {"LOGGING_LEVEL", "warning"}, {"SERVER_LISTEN_BACKLOG", "9"}};
  auto with_env = LoadServerConfig({"s", "--config", file}, Plain(env));
  REQUIRE(with_env);
  CHECK(with_env->port == 3000);
  CHECK(with_env->log_level == LogLevel::kWarning);
  CHECK(with_env->listen_backlog == 9);
  CHECK(with_env->agencies == 3);  // only in the file

  auto with_flags = LoadServerConfig(
      {"s", "--config", file, "--port", "4000", "--log-level=ERROR", "--storage", "b.csv"},
      Plain(env));
  REQUIRE(with_flags);
  CHECK(with_flags->port == 4000);
  CHECK(with_flags->log_level == LogLevel::kError);
  CHECK(with_flags->storage_path == "b.csv");
  CHECK(with_flags->listen_backlog == 9);

  // The file can also come from the environment.
  auto via_env = LoadServerConfig({"s"}, Plain({{"SERVER_CONFIG", file}}));
  REQUIRE(via_env);
  CHECK(via_env->port == 2000);
}

TEST_CASE("agency keys follow the exercise's variable names") {
  testing::TempDir dir;
  std::string file = WriteFile(dir, "client.toml",
                               "[loop]\namount = 10\nperiod = \"5s\"\n[batch]\nmax_amount = 50\n"
                               "window = 3\n[agency]\nid = 2\n");
  Env env{{"CLI_ID", "4"},
          {"CLI_LOOP_PERIOD", "250ms"},
          {"CLI_BATCH_MAXAMOUNT", "64"},
          {"CLI_SERVER_ADDRESS", "server:12345"},
          {"CLI_LOG_LEVEL", "debug"},
          {"CLI_MODE", "echo"}};
  auto a = LoadAgencyConfig({"a", "--config", file, "--batch", "99"}, Plain(env));
  REQUIRE_MESSAGE(a, a.error().message);
  CHECK(a->id == 4);
  CHECK(a->loop_amount == 10);
  CHECK(a->loop_period.count() == doctest::Approx(0.25));
  CHECK(a->batch_max_amount == 99);
  CHECK(a->batch_window == 3);
  CHECK(LoadAgencyConfig({"a", "--config", file, "--window", "1"}, Plain(env))->batch_window == 1);
  CHECK(LoadAgencyConfig({"a", "--config", file}, Plain({{"CLI_BATCH_WINDOW", "64"}}))
            ->batch_window == 64);
  CHECK_FALSE(LoadAgencyConfig({"a", "--window", "0"}, kPlain));
  CHECK_FALSE(LoadAgencyConfig({"a", "--window", "1025"}, kPlain));
  CHECK(a->server_address == "server:12345");
  CHECK(a->log_level == LogLevel::kDebug);
  CHECK(a->mode == AgencyMode::kEcho);
  CHECK(a->DatasetPath() == "dataset/agency-4.csv");
  // An empty variable counts as unset.
  auto b = LoadAgencyConfig({"a", "--config", file}, Plain({{"CLI_ID", ""}}));
  REQUIRE(b);
  CHECK(b->id == 2);
}

TEST_CASE("a broken file is a config error naming the key and the file") {
  testing::TempDir dir;
  auto fails_with = [&](const std::string& text, const std::string& needle) {
    std::string file = WriteFile(dir, "bad.toml", text);
    auto r = LoadServerConfig({"s", "--config", file}, kPlain);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ConfigErrorKind::kConfig);
    CHECK_MESSAGE(r.error().message.find(needle) != std::string::npos, r.error().message);
    CHECK(r.error().message.find(file) != std::string::npos);
    CHECK(r.error().message.find('\n') == std::string::npos);
  };
  fails_with("[server]\nprot = 1\n", "server.prot");
  fails_with("[serve]\nport = 1\n", "serve.port");
  fails_with("port = 1\n", "port");
  fails_with("[server]\nport = \"abc\"\n", "server.port");
  fails_with("[server]\nport = 70000\n", "server.port");
  fails_with("[server]\nport = 0\n", "server.port");
  fails_with("[server]\nagencies = 2.5\n", "server.agencies");
  fails_with("[server]\nread_timeout = \"soon\"\n", "server.read_timeout");
  fails_with("[log]\nlevel = \"LOUD\"\n", "log.level");
  fails_with("[server\nport = 1\n", "bad.toml:");

  auto missing = LoadServerConfig({"s", "--config", dir.File("nope.toml")}, kPlain);
  REQUIRE_FALSE(missing);
  CHECK(missing.error().kind == ConfigErrorKind::kConfig);
  CHECK(missing.error().message.find("nope.toml") != std::string::npos);
}

TEST_CASE("a bad variable is a config error naming the variable") {
  auto r = LoadServerConfig({"s"}, Plain({{"SERVER_PORT", "abc"}}));
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ConfigErrorKind::kConfig);
  CHECK(r.error().message.find("SERVER_PORT") != std::string::npos);
  auto a = LoadAgencyConfig({"a"}, Plain({{"CLI_SERVER_ADDRESS", "no-port"}}));
  REQUIRE_FALSE(a);
  CHECK(a.error().message.find("CLI_SERVER_ADDRESS") != std::string::npos);
  auto b = LoadAgencyConfig({"a"}, Plain({{"CLI_BATCH_MAXAMOUNT", "0"}}));
  REQUIRE_FALSE(b);
  CHECK(b.error().kind == ConfigErrorKind::kConfig);
}

TEST_CASE("bad flags are usage errors; --help and --version answer") {
  for (const Args& args : {Args{"s", "--bogus"}, Args{"s", "--port"}, Args{"s", "--port", "x"},
                           Args{"s", "positional"}, Args{"s", "--agencies=0"}}) {
    auto r = LoadServerConfig(args, kPlain);
    REQUIRE_FALSE(r);
    CHECK(r.error().kind == ConfigErrorKind::kUsage);
  }
  auto help = LoadServerConfig({"s", "--help"}, kPlain);
  REQUIRE(help);
  CHECK(help->request.action == ConfigAction::kHelp);
  for (const char* word : {"--port", "--agencies", "--storage", "--log-level", "--config",
                           "server.listen_backlog", "SERVER_LISTEN_BACKLOG", "LOGGING_LEVEL"}) {
    CHECK_MESSAGE(help->request.text.find(word) != std::string::npos, word);
  }
  auto ahelp = LoadAgencyConfig({"a", "--help"}, kPlain);
  REQUIRE(ahelp);
  CHECK(ahelp->request.action == ConfigAction::kHelp);
  for (const char* word : {"--id", "--server", "--dataset", "--mode", "--batch", "--log-level",
                           "CLI_BATCH_MAXAMOUNT", "CLI_LOOP_PERIOD", "loop.amount"}) {
    CHECK_MESSAGE(ahelp->request.text.find(word) != std::string::npos, word);
  }
  auto version = LoadAgencyConfig({"a", "--version"}, kPlain);
  REQUIRE(version);
  CHECK(version->request.action == ConfigAction::kVersion);
  CHECK(version->request.text.starts_with("lottery-agency "));
}

// The keys a TOML file sets, as "table.key", in file order.
std::vector<std::string> KeysOf(const std::string& toml_text) {
  std::vector<std::string> keys;
  std::istringstream in(toml_text);
  std::string line;
  std::string table;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line[0] == '[') {
      table = line.substr(1, line.find(']') - 1);
      continue;
    }
    keys.push_back(table + "." + line.substr(0, line.find(' ')));
  }
  return keys;
}

TEST_CASE("--help and the shipped files cover every key, and every flag the help names works") {
  auto help = LoadServerConfig({"s", "--help"}, kPlain);
  REQUIRE(help);
  REQUIRE(help->request.action == ConfigAction::kHelp);
  std::string text = help->request.text;
  auto file_keys = KeysOf(testing::ReadFile(testing::SourceRoot() / "conf" / "server.toml"));
  std::vector<std::string> config_keys;
  for (const auto& [key, value] : ServerConfigValues(ServerConfig{})) {
    config_keys.push_back(key);
    CHECK_MESSAGE(text.find(key) != std::string::npos, key);
  }
  std::sort(file_keys.begin(), file_keys.end());
  std::sort(config_keys.begin(), config_keys.end());
  CHECK(file_keys == config_keys);
  CHECK(text.find("--check-config") != std::string::npos);
  CHECK(text.find("--max-connections") != std::string::npos);
  // Each "--flag VALUE" line of the help is accepted with a valid value.
  std::istringstream in(text);
  std::string line;
  int flags = 0;
  while (std::getline(in, line)) {
    auto at = line.find("--");
    auto sets = line.find(" sets ");
    if (at == std::string::npos || sets == std::string::npos) continue;
    std::string flag = line.substr(at, line.find(' ', at) - at);
    std::string key = line.substr(sets + 6);
    std::string value = "1";
    if (key == "log.level") value = "DEBUG";
    if (key == "storage.path") value = "x";
    if (key == "server.address") value = "127.0.0.1";  // it must resolve (issue of --check-config)
    if (key == "server.max_connections") value = "10";
    if (key == "storage.sync") value = "never";
    if (key == "tls.mode") value = "off";
    if (key == "server.metrics_address") value = "127.0.0.1:9464";
    if (key == "storage.backend") value = "file";
    if (key == "storage.postgresql_connections") value = "4";
    CAPTURE(flag);
    auto r = LoadServerConfig({"s", flag, value}, kPlain);
    CHECK_MESSAGE(r.has_value(), (r ? std::string() : r.error().message));
    ++flags;
  }
  CHECK(flags == static_cast<int>(config_keys.size()));
  // An address that does not resolve is refused when loading, so that
  // --check-config and a start agree.
  auto bad = LoadServerConfig({"s", "--address", "not.an.ip"}, kPlain);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ConfigErrorKind::kUsage);
  auto bad_env = LoadServerConfig({"s"}, Plain({{"SERVER_ADDRESS", "not.an.ip"}}));
  REQUIRE_FALSE(bad_env);
  CHECK(bad_env.error().kind == ConfigErrorKind::kConfig);
  CHECK(bad_env.error().message.find("SERVER_ADDRESS") != std::string::npos);
}

TEST_CASE("--check-config is a mode of the server, not a key") {
  auto r = LoadServerConfig({"s", "--check-config", "--port", "7000"}, kPlain);
  REQUIRE(r);
  CHECK(r->check_only);
  CHECK(r->port == 7000);
  CHECK_FALSE(LoadServerConfig({"s"}, kPlain)->check_only);
  auto a = LoadAgencyConfig({"a", "--check-config"}, kPlain);
  REQUIRE_FALSE(a);
  CHECK(a.error().kind == ConfigErrorKind::kUsage);
}

TEST_CASE("storage.sync: always by default, never on request, nothing else") {
  CHECK(LoadServerConfig({"s"}, kPlain)->storage_sync == SyncMode::kAlways);
  CHECK(LoadServerConfig({"s", "--storage-sync", "never"}, kPlain)->storage_sync ==
        SyncMode::kNever);
  CHECK(LoadServerConfig({"s"}, Plain({{"SERVER_STORAGE_SYNC", "never"}}))->storage_sync ==
        SyncMode::kNever);
  auto bad = LoadServerConfig({"s"}, Plain({{"SERVER_STORAGE_SYNC", "sometimes"}}));
  REQUIRE_FALSE(bad);
  CHECK(bad.error().kind == ConfigErrorKind::kConfig);
}

TEST_CASE("max_connections: 0 means a multiple of the agencies") {
  auto r = LoadServerConfig({"s", "--agencies", "10"}, kPlain);
  REQUIRE(r);
  CHECK(r->EffectiveMaxConnections() == 256 + 36);
  r = LoadServerConfig({"s", "--agencies", "2"}, Plain({{"SERVER_MAX_CONNECTIONS", "3"}}));
  REQUIRE(r);
  CHECK(r->EffectiveMaxConnections() == 3);
  CHECK_FALSE(LoadServerConfig({"s", "--max-connections", "-1"}, kPlain));
  // Fewer connections than agencies would deadlock the round.
  auto low = LoadServerConfig({"s", "--agencies", "5", "--max-connections", "4"}, kPlain);
  REQUIRE_FALSE(low);
  CHECK(low.error().kind == ConfigErrorKind::kConfig);
  CHECK(low.error().message.find("server.max_connections (4)") != std::string::npos);
  CHECK(LoadServerConfig({"s", "--agencies", "5", "--max-connections", "5"}, kPlain));
  // The cross-key error names the file the keys were read with.
  testing::TempDir dir;
  const std::string file = dir.File("server.toml");
  { std::ofstream(file) << "[server]\nagencies = 5\nmax_connections = 3\n"; }
  auto from_file = LoadServerConfig({"s", "--config", file}, kPlain);
  REQUIRE_FALSE(from_file);
  CHECK(from_file.error().message.find(file) != std::string::npos);
  ServerConfig running;
  running.agencies = 8;
  running.max_connections = 6;
  CHECK_FALSE(CheckConnectionLimit(running));
  running.max_connections = 0;
  CHECK(CheckConnectionLimit(running));
}

TEST_CASE("durations") {
  CHECK(ParseDuration("5")->count() == doctest::Approx(5));
  CHECK(ParseDuration("0.25")->count() == doctest::Approx(0.25));
  CHECK(ParseDuration("250ms")->count() == doctest::Approx(0.25));
  CHECK(ParseDuration("1m30s")->count() == doctest::Approx(90));
  CHECK(ParseDuration("1h")->count() == doctest::Approx(3600));
  CHECK(ParseDuration("1.5s")->count() == doctest::Approx(1.5));
  CHECK_FALSE(ParseDuration(""));
  CHECK_FALSE(ParseDuration("-1s"));
  CHECK_FALSE(ParseDuration("5 s"));
  CHECK_FALSE(ParseDuration("fast"));
  CHECK_FALSE(ParseDuration("5parsecs"));
  CHECK(FormatDuration(Seconds(5)) == "5s");
  CHECK(FormatDuration(Seconds(0.25)) == "250ms");
  CHECK(FormatDuration(Seconds(1.5)) == "1.5s");
  for (const char* text : {"5s", "250ms", "1.5s", "60s"}) {
    CHECK(FormatDuration(*ParseDuration(text)) == text);
  }
}

}  // namespace
}  // namespace lottery

namespace lottery {

TEST_CASE("agency log.progress: auto by default, a bare --progress means always") {
  // Plaintext only so that no certificate files are needed here.
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off"}, {})->progress == ProgressMode::kAuto);
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off", "--progress"}, {})->progress ==
        ProgressMode::kAlways);
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off", "--progress", "--id", "2"}, {})->progress ==
        ProgressMode::kAlways);
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off", "--progress", "never"}, {})->progress ==
        ProgressMode::kNever);
  CHECK(LoadAgencyConfig({"a", "--tls-mode", "off"}, {{"CLI_PROGRESS", "always"}})->progress ==
        ProgressMode::kAlways);
  auto bad = LoadAgencyConfig({"a", "--tls-mode", "off", "--progress", "sometimes"}, {});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("one of auto, always, never") != std::string::npos);
}

}  // namespace lottery
