// Whole-buffer file I/O on a descriptor the caller owns: the loops around
// pread(), pwrite() and fstat() that the bets file, its journal and the
// winners file share. Errors come back as values naming `what` and errno.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/status.h"

namespace lottery {

// Current size of the file behind `fd`.
Result<std::uint64_t> FileSize(int fd);

// Reads exactly `size` bytes at `offset` into `buf`, retrying short reads
// and EINTR. The file ending first is kCorruptData ("<what>: short read").
Status PreadAll(int fd, char* buf, std::size_t size, std::uint64_t offset, const char* what = "read");

// Writes all of `bytes` at `offset`, retrying short writes and EINTR. On an
// error part of the bytes may have reached the file; the caller cuts back.
Status PwriteAll(int fd, std::string_view bytes, std::uint64_t offset, const char* what = "write");

// Writes all of `bytes` at the descriptor's position (a pipe, a terminal),
// retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view bytes, const char* what = "write");

}  // namespace lottery
