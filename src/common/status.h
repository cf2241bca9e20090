// Errors are values at module boundaries: a function that can fail returns
// Status (nothing on success) or Result<T>. Exceptions never cross a module
// boundary, a fork() or a signal handler.
#pragma once

#include <cerrno>
#include <expected>
#include <string>
#include <utility>

namespace lottery {

// What kind of failure an Error is: callers choose exit codes and replies
// by kind, never by parsing the message.
enum class ErrorKind {
  kIo,            // a system call failed (sys_errno says which way)
  kCorruptData,   // stored data (journal, winners file, bets file) does not parse
  kInvalidInput,  // input from a file or a person does not parse (a dataset row)
  kProtocol,      // a peer's message does not follow docs/PROTOCOL.md
  kConfig,        // the configuration or the environment is wrong
  kBusy,          // another process holds what was asked for (a lock)
  kInternal,      // a call at the wrong moment: a bug, not the world
};

struct Error {
  ErrorKind kind = ErrorKind::kInternal;
  std::string message;  // One human-readable line, no trailing newline.
  int sys_errno = 0;    // errno when kind is kIo and the OS said why, else 0.
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

inline std::unexpected<Error> Fail(ErrorKind kind, std::string message) {
  return std::unexpected<Error>(Error{kind, std::move(message), 0});
}

// A failure from a system call (kind kIo): "<what>: <strerror(errno)>".
std::unexpected<Error> FailErrno(const std::string& what, int err = errno);

inline Status Ok() { return {}; }

}  // namespace lottery
