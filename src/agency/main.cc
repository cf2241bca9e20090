// lottery-agency: sends one agency's bets to the server and prints its winners.
#include "agency/agency.h"
#include "agency/agency_config.h"

int main(int argc, char** argv) {
  using namespace lottery;
  ConfigureLogStyleFromEnvironment();
  auto env = CurrentEnvironment();
  auto config = LoadAgencyConfig({argv, argv + argc}, env);
  if (!config) return ReportConfigError(config.error());
  if (config->request.action != ConfigAction::kRun) return AnswerConfigRequest(config->request);
  return RunAgency(*config, env);
}
