// The error table against docs/PROTOCOL.md's Errors table: the same codes,
// names and kept/closed, row by row.
#include "wire/error_codes.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace lottery {
namespace {

struct DocRow {
  int code;
  std::string name;
  bool closed;
};

std::vector<std::string> Cells(const std::string& line) {
  std::vector<std::string> cells;
  std::stringstream in(line.substr(1));
  std::string cell;
  while (std::getline(in, cell, '|')) {
    const auto a = cell.find_first_not_of(' ');
    const auto b = cell.find_last_not_of(' ');
    cells.push_back(a == std::string::npos ? "" : cell.substr(a, b - a + 1));
  }
  return cells;
}

// The rows of the table under "### Errors".
std::vector<DocRow> DocumentedErrors() {
  const char* root = std::getenv("LOTTERY_SOURCE_ROOT");
  std::ifstream doc(std::string(root ? root : LOTTERY_SOURCE_ROOT) + "/docs/PROTOCOL.md");
  REQUIRE(doc.good());
  std::vector<DocRow> rows;
  std::string line;
  bool in_section = false;
  while (std::getline(doc, line)) {
    if (line.starts_with("### ")) in_section = line == "### Errors";
    if (!in_section || !line.starts_with("| ")) continue;
    std::vector<std::string> cells = Cells(line);
    if (cells.size() < 3 || cells[0].empty() || !std::isdigit(cells[0][0])) continue;
    const bool closed = cells[2].starts_with("closed");
    CHECK_MESSAGE((closed || cells[2].starts_with("kept")), line);
    rows.push_back({std::stoi(cells[0]), cells[1], closed});
  }
  return rows;
}

TEST_CASE("the error table is docs/PROTOCOL.md's Errors table") {
  const std::vector<DocRow> doc = DocumentedErrors();
  const auto table = ErrorCodeTable();
  REQUIRE(doc.size() == table.size());
  for (std::size_t i = 0; i < doc.size(); ++i) {
    INFO("code ", doc[i].code, " ", doc[i].name);
    CHECK(static_cast<int>(table[i].code) == doc[i].code);
    CHECK(table[i].name == doc[i].name);
    CHECK(table[i].closes == doc[i].closed);
    CHECK(std::string_view(ErrorCodeName(table[i].code)) == doc[i].name);
    CHECK(ErrorClosesConnection(table[i].code) == doc[i].closed);
  }
}

TEST_CASE("an unknown code is fatal to the agency and closes") {
  const ErrorCodeInfo& info = InfoFor(static_cast<ErrorCode>(999));
  CHECK(info.name == "UNKNOWN_ERROR");
  CHECK(info.closes);
  CHECK(info.agency == AgencyReaction::kFatal);
}

TEST_CASE("a code is as transient in reply to HELLO as after it: one row decides") {
  CHECK(InfoFor(ErrorCode::kStorageFailed).agency == AgencyReaction::kRetry);
  CHECK(InfoFor(ErrorCode::kTimeout).agency == AgencyReaction::kRetry);
  CHECK(InfoFor(ErrorCode::kReplaced).agency == AgencyReaction::kIdTaken);
  CHECK(InfoFor(ErrorCode::kTlsRequired).agency == AgencyReaction::kMisconfigured);
}

}  // namespace
}  // namespace lottery
