#include "worker/winners_file.h"

#include <doctest/doctest.h>

#include <cctype>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"

namespace lottery {
namespace {

// The example bytes of docs/STORAGE.md, "The winners file".
std::string DocumentedBytes() {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md");
  auto at = doc.find("## The winners file");
  REQUIRE(at != std::string::npos);
  auto fence = doc.find("```", at);
  auto close = doc.find("```", fence + 3);
  REQUIRE(close != std::string::npos);
  std::istringstream in(doc.substr(fence + 3, close - fence - 3));
  std::string bytes, token;
  while (in >> token) {
    REQUIRE(token.size() == 2);
    REQUIRE(std::isxdigit(static_cast<unsigned char>(token[0])));
    bytes.push_back(static_cast<char>(std::stoi(token, nullptr, 16)));
  }
  return bytes;
}

TEST_CASE("the encoding matches the byte vector of docs/STORAGE.md") {
  std::vector<std::vector<std::string>> winners = {{}, {"30904465", "00012345"}, {}, {"7"}};
  std::string blob;
  auto extents = EncodeWinners(winners, blob);
  CHECK(blob == DocumentedBytes());
  CHECK(extents[1].offset == 0);
  CHECK(extents[1].bytes == 20);
  CHECK(extents[1].count == 2);
  CHECK(extents[2].offset == 20);
  CHECK(extents[2].bytes == 0);
  CHECK(extents[3].offset == 20);
  CHECK(extents[3].bytes == 3);
  CHECK(extents[3].count == 1);
  auto third = DecodeWinnerList(std::string_view(blob).substr(20, 3));
  REQUIRE(third);
  CHECK(*third == std::vector<std::string>{"7"});
}

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
  auto decoded =
      DecodeWinnerList(std::string("\x00\x05"
                                   "abc",
                                   5));
  REQUIRE_FALSE(decoded);
  CHECK(decoded.error().kind == ErrorKind::kCorruptData);
  CHECK_FALSE(DecodeWinnerList(std::string("\x00", 1)));
  auto empty = DecodeWinnerList("");
  REQUIRE(empty);
  CHECK(empty->empty());
}

}  // namespace
}  // namespace lottery
