// CRC-32 (IEEE 802.3, the polynomial 0xedb88320 reflected, as zlib
// computes it): the one checksum of the files the server writes (the batch
// journal's records, the round result; docs/STORAGE.md).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lottery {

// The CRC-32 of `size` bytes at `data`.
std::uint32_t Crc32(const char* data, std::size_t size);

}  // namespace lottery
