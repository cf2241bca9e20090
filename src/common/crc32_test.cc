#include "common/crc32.h"

#include <doctest/doctest.h>

#include <string>

namespace lottery {

TEST_CASE("Crc32 gives the standard check value and zlib's known values") {
  CHECK(Crc32("123456789", 9) == 0xcbf43926u);
  CHECK(Crc32("", 0) == 0u);
  CHECK(Crc32("a", 1) == 0xe8b7be43u);
  const std::string zeros(32, '\0');
  CHECK(Crc32(zeros.data(), zeros.size()) == 0x190a55adu);
}

TEST_CASE("Crc32 sees a single flipped bit anywhere") {
  std::string bytes = "lottery batch journal record....";
  const std::uint32_t clean = Crc32(bytes.data(), bytes.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    for (int bit = 0; bit < 8; ++bit) {
      bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
      CHECK(Crc32(bytes.data(), bytes.size()) != clean);
      bytes[i] = static_cast<char>(bytes[i] ^ (1 << bit));
    }
  }
}

}  // namespace lottery
