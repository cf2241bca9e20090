// A tiny JSON writer for lotteryctl --json: one object built field by field,
// strings escaped per RFC 8259. No parsing; no library needed for this.
#pragma once

#include <concepts>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace lottery {

// `text` as a JSON string literal, quotes included: '"', '\\' and control
// bytes escaped; other bytes (UTF-8 included) kept as they are.
std::string JsonString(std::string_view text);

// Builds `{"key":value,...}`. Raw() takes a value already in JSON (a nested
// object or an array).
class JsonObject {
 public:
  JsonObject& String(std::string_view key, std::string_view value);
  JsonObject& Bool(std::string_view key, bool value);
  template <std::integral T>
  JsonObject& Number(std::string_view key, T value) {
    return Raw(key, std::to_string(value));
  }
  JsonObject& Raw(std::string_view key, std::string_view json);
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

// `[a,b,...]` from values already in JSON.
std::string JsonArray(const std::vector<std::string>& values);

}  // namespace lottery
