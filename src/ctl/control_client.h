// lotteryctl's side of the control socket: connect, send one request line,
// read the reply until the server closes, decode it. Bounded by a timeout,
// so a wedged server makes lotteryctl fail, not hang.
#pragma once

#include <chrono>
#include <string>

#include "common/status.h"
#include "wire/control_protocol.h"

namespace lottery {

// Fails with kIo (sys_errno set: ENOENT or ECONNREFUSED when no server
// listens, EACCES when the socket is not ours to use, ETIMEDOUT) or
// kProtocol (the reply does not follow the format).
Result<ControlReply> AskServer(const std::string& socket_path, const ControlRequest& request,
                               std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace lottery
