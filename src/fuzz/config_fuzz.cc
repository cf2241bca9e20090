// libFuzzer target: the configuration loader on a TOML file made of the
// input, for both programs.
#include <cstddef>
#include <cstdint>

#include "agency/agency_config.h"
#include "fuzz/fuzz_util.h"
#include "server/server_config.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  UniqueFd fd = fuzz::MemFdWith(data, size);
  if (!fd) return 0;
  const std::string path = fuzz::PathOf(fd);
  (void)LoadServerConfig({"lottery-server", "--config", path}, {{"SERVER_TLS_MODE", "off"}});
  (void)LoadAgencyConfig({"lottery-agency", "--config", path}, {{"CLI_TLS_MODE", "off"}});
  return 0;
}
