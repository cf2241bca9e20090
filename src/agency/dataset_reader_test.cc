#include "agency/dataset_reader.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace lottery {
namespace {

TEST_CASE("dataset records become bets or say why not") {
  CsvRecord r;
  std::vector<std::string> fields = {"Ana", "Paz", "123", "1990-01-01", "42"};
  for (auto& f : fields) r.fields.push_back(f);
  auto bet = DatasetRecordToBet(r, 9);
  REQUIRE(bet);
  CHECK(bet->agency == 9);
  CHECK(bet->number == 42);
  r.fields[4] = "10000";
  CHECK(DatasetRecordToBet(r, 9).error().message == "number: not an integer 0..9999");
  r.fields[4] = "4x";
  CHECK_FALSE(DatasetRecordToBet(r, 9));
  r.fields[4] = "";
  CHECK_FALSE(DatasetRecordToBet(r, 9));
  r.fields.pop_back();
  CHECK(DatasetRecordToBet(r, 9).error().message == "expected 5 columns, got 4");
}

}  // namespace
}  // namespace lottery
