// lottery-server: collects bets from the agencies and runs the draw.
#include <cstdio>

#include "config.h"
#include "log.h"
#include "server.h"

int main(int argc, char** argv) {
  using namespace lottery;
  std::vector<std::string> args(argv, argv + argc);
  auto config = LoadServerConfig(args, CurrentEnvironment());
  if (!config) {
    switch (config.error().kind) {
      case ConfigErrorKind::kHelp:
      case ConfigErrorKind::kVersion:
        std::fputs(config.error().message.c_str(), stdout);
        std::fputs("\n", stdout);
        return kExitOk;
      case ConfigErrorKind::kUsage:
        Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", config.error().message);
        return kExitUsage;
      case ConfigErrorKind::kConfig:
        Log(LogLevel::kError, "config", Outcome::kFail, "error: {}", config.error().message);
        return kExitConfig;
    }
  }
  return RunServer(*config);
}
