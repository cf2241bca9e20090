// Socket activation (sd_listen_fds(3) protocol): when the service manager
// started us with LISTEN_PID equal to our pid and LISTEN_FDS >= 1, the
// listening socket is already open as descriptor 3 and the server serves it
// instead of binding its own.
#pragma once

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

inline constexpr int kListenFdsStart = 3;  // SD_LISTEN_FDS_START

struct ActivatedSocket {
  UniqueFd listener;          // descriptor 3, close-on-exec now set
  int extra_descriptors = 0;  // LISTEN_FDS - 1 more were passed and closed
};

// std::nullopt when the environment passes no socket to `self`. Fails when it
// claims to but descriptor 3 is not a listening TCP (IPv4/IPv6) stream
// socket. Whatever the outcome, the caller should then drop LISTEN_PID,
// LISTEN_FDS and LISTEN_FDNAMES from its environment (UnsetActivationEnvironment).
Result<std::optional<ActivatedSocket>> TakeActivatedSocket(
    const std::map<std::string, std::string>& env, pid_t self);

// Removes the LISTEN_* variables from the process environment, so nothing
// started later mistakes them for its own.
void UnsetActivationEnvironment();

}  // namespace lottery
