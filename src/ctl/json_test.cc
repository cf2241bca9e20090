#include "ctl/json.h"

#include <doctest/doctest.h>

namespace lottery {

TEST_CASE("JSON strings escape quotes, backslashes and control bytes, and keep UTF-8") {
  CHECK(JsonString("plain") == "\"plain\"");
  CHECK(JsonString("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(JsonString("l1\nl2\r\t") == "\"l1\\nl2\\r\\t\"");
  CHECK(JsonString(std::string("\x01\x1f", 2)) == "\"\\u0001\\u001f\"");
  CHECK(JsonString("Núñez") == "\"Núñez\"");
}

TEST_CASE("an object and an array are built in order") {
  const std::string o = JsonObject()
                            .Bool("ok", true)
                            .Number("round", std::uint64_t{3})
                            .String("state", "open")
                            .Raw("list", JsonArray({"1", "\"x\""}))
                            .str();
  CHECK(o == R"({"ok":true,"round":3,"state":"open","list":[1,"x"]})");
  CHECK(JsonObject().str() == "{}");
  CHECK(JsonArray({}) == "[]");
}

}  // namespace lottery
