// Whole-buffer file I/O on a descriptor the caller owns: the loops around
// pread(), pwrite() and fstat() that the bets file, its journal and the
// winners file share; and the few whole-file steps the round files need
// (directories synced, a file replaced durably). Errors come back as values
// naming `what` (or the path) and errno.
#pragma once

#include <sys/types.h>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace lottery {

// Current size of the file behind `fd`.
Result<std::uint64_t> FileSize(int fd);

// Reads exactly `size` bytes at `offset` into `buf`, retrying short reads
// and EINTR. The file ending first is kCorruptData ("<what>: short read").
Status PreadAll(int fd, char* buf, std::size_t size, std::uint64_t offset,
                const char* what = "read");

// Writes all of `bytes` at `offset`, retrying short writes and EINTR. On an
// error part of the bytes may have reached the file; the caller cuts back.
Status PwriteAll(int fd, std::string_view bytes, std::uint64_t offset, const char* what = "write");

// Writes all of `bytes` at the descriptor's position (a pipe, a terminal),
// retrying short writes and EINTR.
Status WriteAll(int fd, std::string_view bytes, const char* what = "write");

// The directory part of `path` ("." when it has none).
std::string DirectoryOf(const std::string& path);
// The last component of `path`.
std::string BaseNameOf(const std::string& path);

// fsync() of a directory: makes the entries created, renamed or removed in
// it durable.
Status SyncDirectory(const std::string& dir);

// The whole content of the file at `path`.
Result<std::string> ReadFileBytes(const std::string& path);

// Replaces the file at `path` with `bytes` (mode `mode`) so that a crash
// leaves either the old file or the whole new one: a temporary file beside
// it, synced, renamed over it, and the directory synced.
Status ReplaceFileDurably(const std::string& path, std::string_view bytes, mode_t mode);

}  // namespace lottery
