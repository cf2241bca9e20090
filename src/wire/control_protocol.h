// The control socket's lines (docs/PROTOCOL.md, "Control socket"), shared by
// the server's control endpoint and lotteryctl. A request is one line
// `COMMAND[ ARG]\n` of at most kMaxControlRequestBytes; a reply is lines
// `key=value\n`, the first `ok=1` or `ok=0`, and an `ok=0` reply carries
// `error=<one line>`. Text, so that socat can speak it.
#pragma once

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace lottery {

inline constexpr std::size_t kMaxControlRequestBytes = 256;
// A reply longer than this is refused by the client as not a control reply.
inline constexpr std::size_t kMaxControlReplyBytes = 64 * 1024;

struct ControlRequest {
  std::string command;  // lower-case letters and '_'
  std::string arg;      // "" when none; printable ASCII without '\n'
  bool operator==(const ControlRequest&) const = default;
};

// "status\n", "show 3\n".
std::string EncodeControlRequest(const ControlRequest& request);
// One whole line, its '\n' included. Fails (kProtocol) on an empty or
// overlong line, a missing line end, a bad command word or a control byte.
Result<ControlRequest> DecodeControlRequest(std::string_view line);

// A reply: its fields in order, `ok` first. Values are one line: Set turns
// any CR or LF into a space.
class ControlReply {
 public:
  static ControlReply Success();
  static ControlReply Failure(std::string_view error);

  bool ok() const;
  // Appends key=value (keys: lower-case letters, digits and '_').
  ControlReply& Set(std::string_view key, std::string_view value);
  template <std::integral T>
  ControlReply& Set(std::string_view key, T value) {
    return Set(key, std::string_view(std::to_string(value)));
  }
  // The first value of `key`.
  std::optional<std::string_view> Get(std::string_view key) const;
  // The `error` field ("" when none).
  std::string_view error() const { return Get("error").value_or(""); }
  const std::vector<std::pair<std::string, std::string>>& fields() const { return fields_; }

 private:
  std::vector<std::pair<std::string, std::string>> fields_;
};

std::string EncodeControlReply(const ControlReply& reply);
// A whole reply (every line ends with '\n'). Fails (kProtocol) when the first
// line is not ok=0/ok=1, a line has no '=' or a bad key, or ok=0 has no error.
Result<ControlReply> DecodeControlReply(std::string_view text);

// The control socket when server.control_socket is not set:
// "<runtime_directory>/control.sock" when systemd's RuntimeDirectory is set
// (the first of its colon-separated paths), else "<storage_path>.control".
std::string DefaultControlSocketPath(std::string_view storage_path,
                                     std::string_view runtime_directory);

}  // namespace lottery
