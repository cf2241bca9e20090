// Errors are values at module boundaries: a function that can fail returns
// Status (nothing on success) or Result<T>. Exceptions never cross a module
// boundary, a fork() or a signal handler.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace lottery {

struct Error {
  std::string message;  // One human-readable line, no trailing newline.
  int sys_errno = 0;    // errno when the failure came from the OS, else 0.
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(std::string message, int sys_errno = 0) {
  return std::unexpected<Error>(Error{std::move(message), sys_errno});
}

// A failure from a system call: "<what>: <strerror(errno)>".
std::unexpected<Error> FailErrno(const std::string& what, int err = errno);

inline Status Ok() { return {}; }

}  // namespace lottery
