// Fixed-width integers in byte strings: the one home of byte order.
// Little-endian for the files the server writes (the batch journal, the
// round result; docs/STORAGE.md); big-endian (network order) for
// PostgreSQL's binary COPY (storage/pg_copy.h). The wire protocol is
// big-endian and has its own (wire/protocol.cc).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace lottery {

// Appends the low `bytes` bytes of `value`, least significant first.
inline void PutFixedLe(std::string& out, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Writes the low `bytes` bytes of `value` at `at`, least significant first:
// for a length filled in once its record is complete.
inline void EncodeFixedLe(char* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<char>(value >> (8 * i));
}

// Reads `bytes` bytes at `p`, least significant first.
inline std::uint64_t GetFixedLe(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

// Appends the low `bytes` bytes of `value`, most significant first.
inline void PutFixedBe(std::string& out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

// Writes the low `bytes` bytes of `value` at `at`, most significant first:
// for fields filled in after their record was begun.
inline void EncodeFixedBe(char* at, std::uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) at[i] = static_cast<char>(value >> (8 * (bytes - 1 - i)));
}

// Reads `bytes` bytes at `p`, most significant first.
inline std::uint64_t GetFixedBe(const char* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | static_cast<unsigned char>(p[i]);
  return value;
}

}  // namespace lottery
