// lottery-server: collects bets from the agencies and runs the draw.
#include "server/server_config.h"
#include "server/startup.h"

int main(int argc, char** argv) {
  using namespace lottery;
  ConfigureLogStyleFromEnvironment();
  ServerLaunch launch{{argv, argv + argc}, CurrentEnvironment()};
  auto config = LoadServerConfig(launch.argv, launch.env);
  if (!config) return ReportConfigError(config.error());
  if (config->request.action != ConfigAction::kRun) return AnswerConfigRequest(config->request);
  if (config->check_only) return ReportValidConfig(*config);
  return RunServer(*config, launch);
}
