// lottery-server: collects bets from the agencies and runs the draw.
#include "config.h"
#include "server.h"

int main(int argc, char** argv) {
  using namespace lottery;
  auto config = LoadServerConfig({argv, argv + argc}, CurrentEnvironment());
  if (!config) return ReportConfigError(config.error());
  return RunServer(*config);
}
