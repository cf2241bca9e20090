// SignalFd blocks a set of signals in the calling process and delivers them
// through a descriptor, so no code runs in signal-handler context: loops
// poll() the descriptor beside their sockets. Owns the descriptor; the
// signals stay blocked after it goes away (a forked worker makes its own).
#pragma once

#include <signal.h>

#include <initializer_list>
#include <optional>

#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

class SignalFd {
 public:
  static Result<SignalFd> Create(std::initializer_list<int> signals);

  int fd() const { return fd_.get(); }
  // Reads one pending signal without blocking; std::nullopt when none.
  std::optional<int> TakePending();
  // Whether a signal is pending (does not consume it).
  bool Pending() const;
  // Closes the descriptor (a forked child drops its parent's).
  void Close() { fd_.Reset(); }

 private:
  explicit SignalFd(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

// Restores default dispositions and an empty signal mask (for a forked child
// before it sets up its own, and before exec).
void ResetSignalsForChild();

}  // namespace lottery
