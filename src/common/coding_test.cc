#include "common/coding.h"

#include <doctest/doctest.h>

namespace lottery {

TEST_CASE("PutFixedLe writes the least significant byte first, GetFixedLe reads it back") {
  std::string out;
  PutFixedLe(out, 0x0102030405060708ull, 8);
  PutFixedLe(out, 0xa1b2, 2);
  CHECK(out == std::string("\x08\x07\x06\x05\x04\x03\x02\x01\xb2\xa1", 10));
  CHECK(GetFixedLe(out.data(), 8) == 0x0102030405060708ull);
  CHECK(GetFixedLe(out.data() + 8, 2) == 0xa1b2);
}

TEST_CASE("PutFixedBe writes the most significant byte first, GetFixedBe reads it back") {
  std::string out;
  PutFixedBe(out, 0x0102030405060708ull, 8);
  PutFixedBe(out, 0xffffffffu, 4);
  PutFixedBe(out, 0xfffe, 2);  // -2 as an int16
  CHECK(out == std::string("\x01\x02\x03\x04\x05\x06\x07\x08\xff\xff\xff\xff\xff\xfe", 14));
  CHECK(GetFixedBe(out.data(), 8) == 0x0102030405060708ull);
  CHECK(GetFixedBe(out.data() + 8, 4) == 0xffffffffu);
  CHECK(GetFixedBe(out.data() + 12, 2) == 0xfffe);
}

TEST_CASE("EncodeFixedLe and EncodeFixedBe overwrite in place what the Put functions append") {
  std::string le(6, '\xee'), be(6, '\xee');
  EncodeFixedLe(le.data() + 1, 0x01020304, 4);
  EncodeFixedBe(be.data() + 1, 0x01020304, 4);
  CHECK(le == std::string("\xee\x04\x03\x02\x01\xee", 6));
  CHECK(be == std::string("\xee\x01\x02\x03\x04\xee", 6));
}

TEST_CASE("only the low bytes are written") {
  std::string le, be;
  PutFixedLe(le, 0x11223344, 2);
  PutFixedBe(be, 0x11223344, 2);
  CHECK(le == "\x44\x33");
  CHECK(be == "\x33\x44");
}

}  // namespace lottery
