#include "common/peak_rss.h"

#include <doctest/doctest.h>

#include <cstring>
#include <vector>

namespace lottery {
namespace {

TEST_CASE("the peak RSS is reported and grows when memory is touched") {
  auto before = PeakRssKib();
  REQUIRE(before.has_value());
  CHECK(*before > 0);
  // Touch 32 MiB: the high-water mark must rise by most of it.
  std::vector<char> block(32 << 20);
  std::memset(block.data(), 1, block.size());
  auto after = PeakRssKib();
  REQUIRE(after.has_value());
  CHECK(*after >= *before + 24 * 1024);
  CHECK(block[block.size() - 1] == 1);
}

}  // namespace
}  // namespace lottery
