#include "common/swar.h"

#include <doctest/doctest.h>

#include <random>
#include <string>

namespace lottery {
namespace {

// Index of the first byte of `w` for which `pred` holds, or 8.
template <typename Pred>
int FirstByte(std::uint64_t w, Pred pred) {
  for (int i = 0; i < 8; ++i) {
    if (pred(static_cast<unsigned char>(w >> (8 * i)))) return i;
  }
  return 8;
}

int FirstFlag(std::uint64_t flags) { return flags == 0 ? 8 : std::countr_zero(flags) / 8; }

TEST_CASE("LoadWordPadded: the n bytes, then the pad, for every length") {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 2000; ++round) {
    char bytes[8];
    for (char& b : bytes) b = static_cast<char>(rng());
    for (std::size_t n = 0; n <= 8; ++n) {
      const std::uint64_t w = LoadWordPadded(bytes, n, 'a');
      for (std::size_t i = 0; i < 8; ++i) {
        const auto got = static_cast<unsigned char>(w >> (8 * i));
        const auto want = i < n ? static_cast<unsigned char>(bytes[i]) : 'a';
        REQUIRE(got == want);
      }
    }
  }
}

TEST_CASE("the first flagged byte is exact: zero, equal, below") {
  std::mt19937_64 rng(9);
  // Bytes drawn mostly near the edges the checks care about.
  const unsigned char interesting[] = {0x00, 0x01, 0x1f, 0x20, 0x21, 0x2c, 0x22, 0x0d,
                                       0x0a, 0x7e, 0x7f, 0x80, 0x81, 0xff, 'a',  'z'};
  for (int round = 0; round < 200000; ++round) {
    std::uint64_t w = 0;
    for (int i = 0; i < 8; ++i) {
      const unsigned char b =
          rng() % 2 ? interesting[rng() % sizeof interesting] : static_cast<unsigned char>(rng());
      w |= std::uint64_t{b} << (8 * i);
    }
    REQUIRE(FirstFlag(ZeroBytes(w)) == FirstByte(w, [](unsigned char b) { return b == 0; }));
    REQUIRE(FirstFlag(BytesEqual(w, ',')) ==
            FirstByte(w, [](unsigned char b) { return b == ','; }));
    REQUIRE(FirstFlag(BytesEqual(w, 0x7f)) ==
            FirstByte(w, [](unsigned char b) { return b == 0x7f; }));
    // BytesBelow is exact for the first flag when no earlier byte is >= 0x80.
    const int high = FirstByte(w, [](unsigned char b) { return b >= 0x80; });
    const int below = FirstByte(w, [](unsigned char b) { return b < 0x20; });
    if (below < high) REQUIRE(FirstFlag(BytesBelow(w, 0x20)) == below);
    if (below == 8 && high == 8) REQUIRE(BytesBelow(w, 0x20) == 0);
  }
}

}  // namespace
}  // namespace lottery
