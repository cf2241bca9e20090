#include "storage/batch_journal.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <cctype>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "common/unique_fd.h"

namespace lottery {
namespace {

// The three example records of docs/STORAGE.md, "The batch journal".
std::vector<std::string> DocumentedRecords() {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md");
  auto at = doc.find("## The batch journal");
  REQUIRE(at != std::string::npos);
  auto fence = doc.find("```", at);
  auto close = doc.find("```", fence + 3);
  std::istringstream in(doc.substr(fence + 3, close - fence - 3));
  std::vector<std::string> records;
  std::string line;
  std::string current;
  while (std::getline(in, line)) {
    std::istringstream tokens(line);
    std::string token;
    bool hex_line = false;
    while (tokens >> token) {
      if (token.size() != 2 || !std::isxdigit(static_cast<unsigned char>(token[0]))) break;
      current.push_back(static_cast<char>(std::stoi(token, nullptr, 16)));
      hex_line = true;
    }
    if (!hex_line && !current.empty()) {
      records.push_back(current);
      current.clear();
    }
  }
  if (!current.empty()) records.push_back(current);
  return records;
}

TEST_CASE("records match the byte vectors of docs/STORAGE.md") {
  auto docs = DocumentedRecords();
  REQUIRE(docs.size() == 3);
  std::vector<JournalRecord> records = {
      {JournalKind::kRoundStart, 0, 0, 0, 0},
      {JournalKind::kBatch, 3, 100, 12, 123456},
      {JournalKind::kRoundComplete, 0, 0, 0, 987654},
  };
  for (std::size_t i = 0; i < records.size(); ++i) {
    std::string bytes;
    EncodeJournalRecord(bytes, records[i]);
    CHECK(testing::Hex(bytes) == testing::Hex(docs[i]));
    REQUIRE(docs[i].size() == kJournalRecordSize);
    auto decoded = DecodeJournalRecord(docs[i].data());
    REQUIRE(decoded);
    CHECK(*decoded == records[i]);
  }
}

TEST_CASE("a record that is damaged anywhere does not decode") {
  std::string bytes;
  EncodeJournalRecord(bytes, JournalRecord{JournalKind::kBatch, 3, 100, 12, 123456});
  for (std::size_t i = 0; i < 36; ++i) {
    std::string damaged = bytes;
    damaged[i] = static_cast<char>(damaged[i] ^ 0x01);
    CAPTURE(i);
    CHECK_FALSE(DecodeJournalRecord(damaged.data()));
  }
}

}  // namespace
}  // namespace lottery
