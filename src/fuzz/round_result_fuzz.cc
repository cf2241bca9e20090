// libFuzzer target: the round result's decoder (storage/rounds.h), which
// reads a file that start-up and lotteryctl trust. A result that decodes is
// the one encoding of what it holds: encoding it again gives the same bytes,
// and no agency that took no part has winners.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "storage/rounds.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  auto result = DecodeRoundResult(input);
  if (!result) return 0;
  std::string again;
  EncodeRoundResult(again, *result);
  if (again != input) std::abort();
  for (std::uint32_t a = 1; a <= result->agencies(); ++a) {
    if (!result->took_part[a] && !result->winners[a].empty()) std::abort();
  }
  return 0;
}
