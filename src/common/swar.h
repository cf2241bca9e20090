// Eight bytes at a time in a 64-bit word ("SIMD within a register"): the
// helpers the CSV and name checks use to look at short fields without a
// branch per byte. Little-endian only: the first byte in memory is the
// lowest byte of the word.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

namespace lottery {

static_assert(std::endian::native == std::endian::little, "word helpers assume little-endian");

inline constexpr std::uint64_t kWordOnes = 0x0101010101010101ULL;
inline constexpr std::uint64_t kWordHighs = 0x8080808080808080ULL;

// The n <= 8 bytes at p as a word, the bytes past n set to `pad`. Short
// tails are gathered with whole loads in registers: a memcpy of n bytes into
// a stack word followed by an 8-byte load stalls store forwarding, which made
// the name check the hottest line of a worker (docs/PERFORMANCE.md).
inline std::uint64_t LoadWordPadded(const char* p, std::size_t n, unsigned char pad) {
  std::uint64_t w = 0;
  if (n >= 8) {
    std::memcpy(&w, p, 8);
    return w;
  }
  if (n >= 4) {
    std::uint32_t low = 0;
    std::uint32_t high = 0;
    std::memcpy(&low, p, 4);
    std::memcpy(&high, p + n - 4, 4);  // overlaps `low`: the same bytes
    w = low | (std::uint64_t{high} << (8 * (n - 4)));
  } else if (n > 0) {
    auto byte = [&](std::size_t i) {
      return std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    };
    w = byte(0) | byte(n / 2) | byte(n - 1);
  }
  const std::uint64_t kept = n == 0 ? 0 : ~std::uint64_t{0} >> (8 * (8 - n));
  return (w & kept) | (kWordOnes * pad & ~kept);
}

// A high bit in each byte of w that is zero. The lowest flag is exact (a
// borrow only runs towards higher bytes), so countr_zero()/8 is the index of
// the first zero byte; flags above it may be false.
inline std::uint64_t ZeroBytes(std::uint64_t w) { return (w - kWordOnes) & ~w & kWordHighs; }

// A high bit in each byte of w equal to `c` (same exactness as ZeroBytes).
inline std::uint64_t BytesEqual(std::uint64_t w, unsigned char c) {
  return ZeroBytes(w ^ (kWordOnes * c));
}

// A high bit in each byte of w below `n` (n <= 0x80; exact for the lowest
// flag among bytes below 0x80).
inline std::uint64_t BytesBelow(std::uint64_t w, unsigned char n) {
  return (w - kWordOnes * n) & ~w & kWordHighs;
}

}  // namespace lottery
