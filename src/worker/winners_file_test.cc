#include "worker/winners_file.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace lottery {
namespace {

TEST_CASE("winners round-trip through the file, each agency at its extent") {
  std::vector<std::vector<std::string>> winners = {{}, {"30904465", "00012345"}, {}, {"7"}};
  std::string blob;
  auto extents = EncodeWinners(winners, blob);
  REQUIRE(extents.size() == 4);
  auto fd = CreateWinnersFile();
  REQUIRE(fd);
  REQUIRE(WriteWinnersFile(fd->get(), blob));
  for (std::size_t a = 1; a < winners.size(); ++a) {
    CHECK(extents[a].count == winners[a].size());
    auto read = ReadWinnerList(fd->get(), extents[a]);
    REQUIRE(read);
    CHECK(*read == winners[a]);
  }
}

TEST_CASE("a list whose length runs past its extent is corrupt data") {
  auto decoded = DecodeWinnerList(std::string("\x00\x05" "abc", 5));
  REQUIRE_FALSE(decoded);
  CHECK(decoded.error().kind == ErrorKind::kCorruptData);
  CHECK_FALSE(DecodeWinnerList(std::string("\x00", 1)));
  auto empty = DecodeWinnerList("");
  REQUIRE(empty);
  CHECK(empty->empty());
}

}  // namespace
}  // namespace lottery
