#include "common/file_io.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace lottery {

Result<std::uint64_t> FileSize(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return FailErrno("fstat");
  return static_cast<std::uint64_t>(st.st_size);
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

}  // namespace lottery
