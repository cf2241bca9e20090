#include "common/file_io.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/unique_fd.h"

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

std::string DirectoryOf(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseNameOf(const std::string& path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

Status SyncDirectory(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + dir);
  if (::fsync(fd.get()) != 0) return FailErrno("fsync " + dir);
  return Ok();
}

Result<std::string> ReadFileBytes(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + path);
  auto size = FileSize(fd.get());
  if (!size) return std::unexpected(size.error());
  std::string bytes(*size, '\0');
  if (Status r = PreadAll(fd.get(), bytes.data(), bytes.size(), 0, "read"); !r) {
    return std::unexpected(r.error());
  }
  return bytes;
}

Status ReplaceFileDurably(const std::string& path, std::string_view bytes, mode_t mode) {
  const std::string tmp = path + ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd) return FailErrno("open " + tmp);
  if (::fchmod(fd.get(), mode) != 0) return FailErrno("chmod " + tmp);
  if (Status w = WriteAll(fd.get(), bytes, "write"); !w) return w;
  if (::fsync(fd.get()) != 0) return FailErrno("fsync " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return FailErrno("rename " + tmp);
  return SyncDirectory(DirectoryOf(path));
}

}  // namespace lottery
