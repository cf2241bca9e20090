// The digest of an agency's stored bets (docs/PROTOCOL.md, "The stored
// digest"): the sum, mod 2^64, of RowDigest(row, position) over its bet rows
// in stored order, positions 0, 1, 2, ... WELCOME reports it, so that a new
// agency process can check that the first rows of its dataset are the ones
// the server holds before it resumes after them. A sum, so that the server
// keeps it up to date batch by batch with one addition, and a keyed hash per
// row, so that the same rows in another order give another digest. It tells
// a changed dataset from the same one; it is no defence against a forger.
//
// Both programs use it: the agency over its dataset rows, the server's
// workers over the rows of each batch (inline: a worker hashes every bet),
// start-up recovery over the round's rows in the bets file.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace lottery {

namespace row_digest_detail {

inline constexpr std::uint64_t kPrime1 = 0x9E3779B185EBCA87ULL;
inline constexpr std::uint64_t kPrime2 = 0xC2B2AE3D27D4EB4FULL;
inline constexpr std::uint64_t kPrime3 = 0x165667B19E3779F9ULL;

// Eight bytes as one word, the first byte lowest.
inline std::uint64_t LoadLittle(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = std::byteswap(word);
  return word;
}

// xxHash64's round: one multiply-rotate-multiply per word.
inline std::uint64_t Round(std::uint64_t acc, std::uint64_t word) {
  acc += word * kPrime2;
  acc = std::rotl(acc, 31);
  return acc * kPrime1;
}

}  // namespace row_digest_detail

// The keyed hash of one bet row at `position` (0-based among the agency's
// stored bets). Two lanes over 16-byte blocks, so that their multiplies
// overlap. The last block is the row's last 16 bytes, overlapping the one
// before it (a fixed-size load: a copy of a variable length is a library
// call, which cost more than the hashing); a row shorter than 16 bytes is
// zero-padded. The length seeds the second lane, so neither is ambiguous.
inline std::uint64_t RowDigest(std::string_view row, std::uint64_t position) {
  using namespace row_digest_detail;
  std::uint64_t a = position ^ kPrime1;
  std::uint64_t b = static_cast<std::uint64_t>(row.size()) ^ kPrime2;
  const char* p = row.data();
  std::size_t n = row.size();
  char padded[16] = {};
  if (n < 16) {
    if (n > 0) std::memcpy(padded, p, n);  // rare: a real row is longer
    p = padded;
    n = 16;
  }
  for (; n > 16; p += 16, n -= 16) {
    a = Round(a, LoadLittle(p));
    b = Round(b, LoadLittle(p + 8));
  }
  p -= 16 - n;  // the last 16 bytes
  a = Round(a, LoadLittle(p));
  b = Round(b, LoadLittle(p + 8));
  std::uint64_t h = a ^ std::rotl(b, 27);
  h ^= h >> 33;
  h *= kPrime2;
  h ^= h >> 29;
  h *= kPrime3;
  h ^= h >> 32;
  return h;
}

// An agency's stored bets as WELCOME counts them: how many, and the sum of
// their RowDigests. Add() takes the next row in stored order.
struct StoredRows {
  std::uint64_t count = 0;
  std::uint64_t digest = 0;

  void Add(std::string_view row) { digest += RowDigest(row, count++); }
};

}  // namespace lottery
