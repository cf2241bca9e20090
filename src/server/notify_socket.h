// The service manager's notification protocol, written out: one datagram of
// newline-separated "KEY=VALUE" lines sent to the AF_UNIX socket named by
// NOTIFY_SOCKET (a filesystem path, or "@name" for the abstract namespace).
// This is what sd_notify(3) does; the server uses it when it was built
// without libsystemd. Stateless: each call opens and closes its own socket.
#pragma once

#include <string_view>

#include "common/status.h"

namespace lottery {

// Sends `message` as one datagram to `socket_address`. Fails (without
// sending) when the address is empty, too long, or not an AF_UNIX address.
Status SendNotifyDatagram(std::string_view socket_address, std::string_view message);

}  // namespace lottery
