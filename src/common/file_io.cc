#include "common/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace lottery {

Result<std::uint64_t> FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FailErrno("fstat");
  return static_cast<std::uint64_t>(st.st_size);
}

Status PreadAll(int fd, char* buf, std::size_t size, std::uint64_t offset, const char* what) {
  while (size > 0) {
    ssize_t n = ::pread(fd, buf, size, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno(what);
    }
    if (n == 0) return Fail(ErrorKind::kCorruptData, std::string(what) + ": short read");
    buf += n;
    size -= static_cast<std::size_t>(n);
    offset += static_cast<std::uint64_t>(n);
  }
  return Ok();
}

Status PwriteAll(int fd, std::string_view bytes, std::uint64_t offset, const char* what) {
  while (!bytes.empty()) {
    ssize_t n = ::pwrite(fd, bytes.data(), bytes.size(), static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno(what);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
    offset += static_cast<std::uint64_t>(n);
  }
  return Ok();
}

Status WriteAll(int fd, std::string_view bytes, const char* what) {
  while (!bytes.empty()) {
    ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno(what);
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return Ok();
}

}  // namespace lottery
