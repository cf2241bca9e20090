// lotteryctl: the operator's command for a running lottery-server
// (docs/man/lotteryctl.8).
#include <cstdio>

#include "common/config_loader.h"
#include "common/exit_codes.h"
#include "ctl/commands.h"
#include "ctl/ctl_options.h"

int main(int argc, char** argv) {
  using namespace lottery;
  auto options = ParseCtlOptions({argv, argv + argc}, CurrentEnvironment());
  if (!options) {
    std::fprintf(stderr, "lotteryctl: %s\n%s", options.error().message.c_str(), CtlUsage().c_str());
    return kExitUsage;
  }
  if (options->help) {
    std::fputs(CtlUsage().c_str(), stdout);
    return kExitOk;
  }
  CtlResult result = RunCtlCommand(*options);
  std::fputs(result.out.c_str(), stdout);
  std::fputs(result.err.c_str(), stderr);
  return result.code;
}
