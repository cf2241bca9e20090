#include "wire/row_digest.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <string>

#include "common/test_util.h"

namespace lottery {
namespace {

constexpr std::string_view kPlain = "Santiago Lionel,Lorca,30904465,1999-03-17,2201";
constexpr std::string_view kQuoted =
    "\"Ana \"\"la\"\" María, hija\",Núñez,00012345,1980-05-17,7574";

TEST_CASE("RowDigest gives the values docs/PROTOCOL.md states") {
  const std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "PROTOCOL.md");
  auto documented = [&](std::uint64_t value) {
    return doc.find(fmt::format("`0x{:016x}`", value)) != std::string::npos;
  };
  CHECK(RowDigest(kPlain, 0) == 0xe20eca8da6739805ULL);
  CHECK(RowDigest(kPlain, 1) == 0x6e16fb950f699d0eULL);
  CHECK(RowDigest(kQuoted, 1) == 0x83f9dbe74a0adf65ULL);
  CHECK(documented(RowDigest(kPlain, 0)));
  CHECK(documented(RowDigest(kPlain, 1)));
  CHECK(documented(RowDigest(kQuoted, 1)));
  StoredRows rows;
  rows.Add(kPlain);
  rows.Add(kQuoted);
  CHECK(rows.count == 2);
  CHECK(rows.digest == 0x6608a674f07e776aULL);
  CHECK(documented(rows.digest));
}

TEST_CASE("RowDigest tells rows, positions, lengths and orders apart") {
  CHECK(RowDigest(kPlain, 0) != RowDigest(kPlain, 1));
  CHECK(RowDigest(kPlain, 0) != RowDigest(kQuoted, 0));
  // Zero padding: a row and the same row with a NUL more differ.
  CHECK(RowDigest("abc", 0) != RowDigest(std::string_view("abc\0", 4), 0));
  CHECK(RowDigest("", 0) != RowDigest(std::string_view("\0", 1), 0));
  // Every length around the block edges hashes every byte.
  std::string row(40, 'x');
  for (std::size_t n = 1; n <= row.size(); ++n) {
    std::string other = row.substr(0, n);
    other[n - 1] = 'y';
    CHECK(RowDigest(row.substr(0, n), 3) != RowDigest(other, 3));
  }
  StoredRows forward;
  forward.Add(kPlain);
  forward.Add(kQuoted);
  StoredRows backward;
  backward.Add(kQuoted);
  backward.Add(kPlain);
  CHECK(forward.digest != backward.digest);
}

}  // namespace
}  // namespace lottery
