#include "server/listener.h"

#include <fmt/format.h>

#include "common/log.h"
#include "common/net.h"

namespace lottery {

Result<Listener> OpenListener(const ServerConfig& config,
                              std::optional<ActivatedSocket> activated) {
  Listener out;
  if (activated) {
    ActivatedSocket& socket = *activated;
    out.socket = std::move(socket.listener);
    auto port = LocalPort(out.socket.get());
    out.description = fmt::format("port {} (socket activation)", port ? *port : 0);
    Log(LogLevel::kInfo, "listen", Outcome::kSuccess,
        "port: {} | activation: socket | descriptor: {} | detail: server.address and server.port "
        "are not used",
        port ? *port : 0, kListenFdsStart);
    if (socket.extra_descriptors > 0) {
      Log(LogLevel::kWarning, "listen", Outcome::kInProgress,
          "detail: {} more activated sockets closed; the server serves one",
          socket.extra_descriptors);
    }
    if (port && *port != config.port) {
      Log(LogLevel::kWarning, "listen", Outcome::kInProgress,
          "detail: the activated socket listens on port {}, server.port says {}", *port,
          config.port);
    }
    return out;
  }
  auto bound = ListenTcp(config.address, config.port, config.listen_backlog);
  if (!bound) {
    Log(LogLevel::kError, "listen", Outcome::kFail, "error: {}", bound.error().message);
    return std::unexpected(bound.error());
  }
  out.socket = std::move(*bound);
  auto port = LocalPort(out.socket.get());
  out.description = fmt::format("{}:{}", config.address, port ? *port : config.port);
  Log(LogLevel::kInfo, "listen", Outcome::kSuccess, "address: {} | port: {}", config.address,
      port ? *port : config.port);
  return out;
}

}  // namespace lottery
