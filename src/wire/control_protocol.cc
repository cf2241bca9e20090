#include "wire/control_protocol.h"

#include <fmt/format.h>

namespace lottery {
namespace {

bool IsKeyChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

bool IsKey(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!IsKeyChar(c)) return false;
  }
  return true;
}

bool IsCommand(std::string_view word) {
  if (word.empty()) return false;
  for (char c : word) {
    if (!((c >= 'a' && c <= 'z') || c == '_')) return false;
  }
  return true;
}

bool IsPrintable(std::string_view text) {
  for (char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) return false;
  }
  return true;
}

std::string OneLine(std::string_view value) {
  std::string out(value);
  for (char& c : out) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return out;
}

}  // namespace

std::string EncodeControlRequest(const ControlRequest& request) {
  return request.arg.empty() ? request.command + "\n" : request.command + " " + request.arg + "\n";
}

Result<ControlRequest> DecodeControlRequest(std::string_view line) {
  if (line.size() > kMaxControlRequestBytes) {
    return Fail(ErrorKind::kProtocol,
                fmt::format("request longer than {} bytes", kMaxControlRequestBytes));
  }
  if (!line.ends_with('\n')) return Fail(ErrorKind::kProtocol, "request without a line end");
  line.remove_suffix(1);
  if (line.ends_with('\r')) line.remove_suffix(1);
  if (!IsPrintable(line)) return Fail(ErrorKind::kProtocol, "request with a control byte");
  const std::size_t space = line.find(' ');
  ControlRequest request;
  request.command = std::string(line.substr(0, space));
  if (space != std::string_view::npos) request.arg = std::string(line.substr(space + 1));
  if (!IsCommand(request.command)) {
    return Fail(ErrorKind::kProtocol, "request does not start with a command word (a-z, _)");
  }
  return request;
}

ControlReply ControlReply::Success() {
  ControlReply r;
  r.fields_.emplace_back("ok", "1");
  return r;
}

ControlReply ControlReply::Failure(std::string_view error) {
  ControlReply r;
  r.fields_.emplace_back("ok", "0");
  r.fields_.emplace_back("error", OneLine(error));
  return r;
}

bool ControlReply::ok() const { return !fields_.empty() && fields_.front().second == "1"; }

ControlReply& ControlReply::Set(std::string_view key, std::string_view value) {
  fields_.emplace_back(std::string(key), OneLine(value));
  return *this;
}

std::optional<std::string_view> ControlReply::Get(std::string_view key) const {
  for (const auto& [k, v] : fields_) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::string EncodeControlReply(const ControlReply& reply) {
  std::string out;
  for (const auto& [k, v] : reply.fields())
    fmt::format_to(std::back_inserter(out), "{}={}\n", k, v);
  return out;
}

Result<ControlReply> DecodeControlReply(std::string_view text) {
  if (text.empty() || !text.ends_with('\n')) {
    return Fail(ErrorKind::kProtocol, "reply empty or cut short (no final line end)");
  }
  ControlReply reply;
  bool first = true;
  while (!text.empty()) {
    const std::size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(end + 1);
    const std::size_t eq = line.find('=');
    if (eq == std::string_view::npos || !IsKey(line.substr(0, eq))) {
      return Fail(ErrorKind::kProtocol, fmt::format("reply line is not key=value: {:.60}", line));
    }
    const std::string_view key = line.substr(0, eq);
    const std::string_view value = line.substr(eq + 1);
    if (first) {
      if (key != "ok" || (value != "0" && value != "1")) {
        return Fail(ErrorKind::kProtocol, "reply does not start with ok=0 or ok=1");
      }
      reply = value == "1" ? ControlReply::Success() : ControlReply();
      if (value == "0") reply.Set("ok", "0");
      first = false;
      continue;
    }
    reply.Set(key, value);
  }
  if (!reply.ok() && !reply.Get("error")) return Fail(ErrorKind::kProtocol, "ok=0 without error=");
  return reply;
}

std::string DefaultControlSocketPath(std::string_view storage_path,
                                     std::string_view runtime_directory) {
  runtime_directory = runtime_directory.substr(0, runtime_directory.find(':'));
  if (!runtime_directory.empty()) return fmt::format("{}/control.sock", runtime_directory);
  return fmt::format("{}.control", storage_path);
}

}  // namespace lottery
