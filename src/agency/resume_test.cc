#include "agency/resume.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "common/unique_fd.h"
#include "wire/row_digest.h"

namespace lottery {
namespace {

// Six lines: four valid bets and two the agency skips (a number out of
// range, a birthdate in the future), the second bet spelled with needless
// quotes (it is sent, and so stored, re-spelled).
constexpr const char* kDataset =
    "Ana,Paz,1,1990-01-01,7\r\n"
    "Bea,Sol,2,1990-01-01,10000\r\n"
    "\"Carla\",Rey,3,1991-02-03,0\n"
    "Dora,Luz,4,2999-01-01,5\r\n"
    "Eva,Mar,5,1992-03-04,9999\r\n"
    "Fina,Rio,6,1993-04-05,42\r\n";

// The rows those bets travel as, in order.
const std::vector<std::string> kRows = {"Ana,Paz,1,1990-01-01,7", "Carla,Rey,3,1991-02-03,0",
                                        "Eva,Mar,5,1992-03-04,9999", "Fina,Rio,6,1993-04-05,42"};

std::uint64_t DigestOfFirst(std::size_t n) {
  StoredRows rows;
  for (std::size_t i = 0; i < n; ++i) rows.Add(kRows[i]);
  return rows.digest;
}

class Dataset {
 public:
  Dataset() {
    char path[] = "/tmp/lottery-resume-XXXXXX";
    fd_ = UniqueFd(::mkstemp(path));
    REQUIRE(fd_.valid());
    ::unlink(path);
    const std::string text = kDataset;
    REQUIRE(::write(fd_.get(), text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    REQUIRE(::lseek(fd_.get(), 0, SEEK_SET) == 0);
  }
  int fd() const { return fd_.get(); }

 private:
  UniqueFd fd_;
};

const Date kToday{2026, 1, 1};

TEST_CASE("the stored bets are skipped by valid rows; invalid lines do not count") {
  Dataset data;
  DatasetRows rows(data.fd(), 1, kToday);
  StoredRows seen;
  REQUIRE(SkipStoredBets(rows, 3, DigestOfFirst(3), seen) == StoredMatch::kMatch);
  CHECK(seen.count == 3);
  CHECK(rows.lines_skipped() == 2);
  // The next row is the fourth bet, not the third valid line after the skip.
  std::string_view row;
  REQUIRE(rows.Next(row) == RowRead::kRow);
  CHECK(row == kRows[3]);
}

TEST_CASE("nothing stored: nothing is read") {
  Dataset data;
  DatasetRows rows(data.fd(), 1, kToday);
  StoredRows seen;
  CHECK(SkipStoredBets(rows, 0, 0, seen) == StoredMatch::kMatch);
  std::string_view row;
  REQUIRE(rows.Next(row) == RowRead::kRow);
  CHECK(row == kRows[0]);
}

TEST_CASE("another digest, or fewer rows than the server holds, do not match") {
  SUBCASE("the rows differ") {
    Dataset data;
    DatasetRows rows(data.fd(), 1, kToday);
    StoredRows seen;
    CHECK(SkipStoredBets(rows, 2, DigestOfFirst(2) + 1, seen) == StoredMatch::kDiffers);
  }
  SUBCASE("the same rows in another order") {
    StoredRows swapped;
    swapped.Add(kRows[1]);
    swapped.Add(kRows[0]);
    Dataset data;
    DatasetRows rows(data.fd(), 1, kToday);
    StoredRows seen;
    CHECK(SkipStoredBets(rows, 2, swapped.digest, seen) == StoredMatch::kDiffers);
  }
  SUBCASE("a bet-mode bet stored first") {
    StoredRows bet;
    bet.Add("Zoe,Paz,99,1990-01-01,7");
    Dataset data;
    DatasetRows rows(data.fd(), 1, kToday);
    StoredRows seen;
    CHECK(SkipStoredBets(rows, 1, bet.digest, seen) == StoredMatch::kDiffers);
  }
  SUBCASE("the dataset is shorter") {
    Dataset data;
    DatasetRows rows(data.fd(), 1, kToday);
    StoredRows seen;
    CHECK(SkipStoredBets(rows, 5, DigestOfFirst(4), seen) == StoredMatch::kTooFew);
    CHECK(seen.count == 4);
  }
}

TEST_CASE("all the dataset stored: it matches and nothing is left to send") {
  Dataset data;
  DatasetRows rows(data.fd(), 1, kToday);
  StoredRows seen;
  REQUIRE(SkipStoredBets(rows, 4, DigestOfFirst(4), seen) == StoredMatch::kMatch);
  std::string_view row;
  CHECK(rows.Next(row) == RowRead::kEnd);
}

}  // namespace
}  // namespace lottery
