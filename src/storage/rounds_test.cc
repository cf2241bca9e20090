#include "storage/rounds.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "storage/batch_journal.h"

namespace lottery {
namespace {

// The two example rows of docs/STORAGE.md, agency 2's bets file.
const std::string kRows =
    "2,Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n"
    "2,\"Ana \"\"la\"\" Mar\xc3\xad"
    "a, hija\",N\xc3\xba\xc3\xb1"
    "ez,00012345,1980-05-17,7574\r\n";

std::string FromHex(const std::string& hex) {
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// The example of docs/STORAGE.md, "The round result", read from the
// document itself: round 3 drawn over those rows with 7574, both agencies
// took part, agency 2 won with 00012345.
std::string DocumentedResult() {
  const std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md");
  const auto section = doc.find("## The round result");
  REQUIRE(section != std::string::npos);
  const auto open = doc.find("```\n", section);
  const auto close = doc.find("```", open + 4);
  REQUIRE(close != std::string::npos);
  std::string hex;
  for (char c : doc.substr(open + 4, close - open - 4)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  return FromHex(hex);
}

RoundResult ExampleResult() {
  RoundResult r;
  r.round = 3;
  r.winning_number = 7574;
  r.bets = 2;
  r.drawn_at = 1764892800;  // 2025-12-05T00:00:00Z
  r.bets_file_size = kRows.size();
  const std::string sha =
      FromHex("959c3bd56d4e2fdbc0779669bd6207752b2d741cff3bcac4a884e9ebab52cbbb");
  std::copy(sha.begin(), sha.end(), reinterpret_cast<char*>(r.bets_sha256.data()));
  r.took_part = {false, true, true};
  r.winners = {{}, {}, {"00012345"}};
  return r;
}

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string Journal(std::initializer_list<JournalRecord> records) {
  std::string bytes;
  for (const JournalRecord& r : records) EncodeJournalRecord(bytes, r);
  return bytes;
}

// A drawn round 3 on disk: the example rows, their journal, their result.
void WriteDrawnRound(const std::string& path) {
  WriteFile(path, kRows);
  WriteFile(path + ".journal", Journal({{JournalKind::kRoundStart, 0, 0, 3, 0},
                                        {JournalKind::kBatch, 2, 2, 1, kRows.size()},
                                        {JournalKind::kAgencyFinished, 1, 0, 0, kRows.size()},
                                        {JournalKind::kAgencyFinished, 2, 2, 0, kRows.size()},
                                        {JournalKind::kRoundComplete, 0, 0, 0, kRows.size()}}));
  REQUIRE(WriteRoundResult(path + ".result", ExampleResult()));
}

TEST_CASE("the round result is the byte layout docs/STORAGE.md shows") {
  std::string bytes;
  EncodeRoundResult(bytes, ExampleResult());
  CHECK(testing::Hex(bytes) == testing::Hex(DocumentedResult()));
  auto decoded = DecodeRoundResult(DocumentedResult());
  REQUIRE(decoded);
  CHECK(*decoded == ExampleResult());
  CHECK(decoded->winner_count() == 1);
  CHECK(decoded->agencies() == 2);
}

TEST_CASE("a result with any byte changed, or cut short, does not decode") {
  const std::string good = DocumentedResult();
  for (std::size_t i = 0; i < good.size(); ++i) {
    std::string bad = good;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    CHECK_FALSE(DecodeRoundResult(bad));
  }
  for (std::size_t n = 0; n < good.size(); ++n) CHECK_FALSE(DecodeRoundResult(good.substr(0, n)));
  CHECK_FALSE(DecodeRoundResult(good + "x"));
}

TEST_CASE("the SHA-256 of a file's first bytes") {
  testing::TempDir dir;
  WriteFile(dir.File("bets.csv"), kRows + "more");
  UniqueFd fd(::open(dir.File("bets.csv").c_str(), O_RDONLY));
  auto sha = Sha256OfFile(fd.get(), kRows.size());
  REQUIRE(sha);
  CHECK(*sha == ExampleResult().bets_sha256);
  CHECK(Sha256Hex(*sha) == "959c3bd56d4e2fdbc0779669bd6207752b2d741cff3bcac4a884e9ebab52cbbb");
}

TEST_CASE("round files: the current ones beside storage.path, archived ones under rounds/<N>/") {
  CHECK(CurrentRoundFiles("/var/lib/lottery/bets.csv").result ==
        "/var/lib/lottery/bets.csv.result");
  CHECK(ArchiveRoot("/var/lib/lottery/bets.csv") == "/var/lib/lottery/rounds");
  CHECK(ArchiveRoot("bets.csv") == "./rounds");
  const RoundFiles a = ArchivedRoundFiles("/var/lib/lottery/bets.csv", 12);
  CHECK(a.bets == "/var/lib/lottery/rounds/12/bets.csv");
  CHECK(a.journal == "/var/lib/lottery/rounds/12/bets.csv.journal");
}

TEST_CASE("archiving a drawn round keeps its files intact and starts the next one empty") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  REQUIRE(ArchiveAndStartNext(path, 3));
  const RoundFiles archived = ArchivedRoundFiles(path, 3);
  CHECK(testing::ReadFile(archived.bets) == kRows);
  CHECK(DecodeRoundResult(testing::ReadFile(archived.result)).value() == ExampleResult());
  CHECK(testing::ReadFile(archived.journal).size() == 5 * kJournalRecordSize);
  CHECK(testing::ReadFile(path).empty());
  CHECK_FALSE(std::filesystem::exists(path + ".result"));
  const std::string journal = testing::ReadFile(path + ".journal");
  REQUIRE(journal.size() == kJournalRecordSize);
  CHECK(DecodeJournalRecord(journal.data()).value() ==
        JournalRecord{JournalKind::kRoundStart, 0, 0, 4, 0});
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);

  auto rounds = ListArchivedRounds(path);
  REQUIRE(rounds);
  REQUIRE(rounds->size() == 1);
  CHECK((*rounds)[0].number == 3);
  CHECK((*rounds)[0].state == RoundState::kArchived);
  CHECK((*rounds)[0].bets == 2);
  CHECK((*rounds)[0].winners == 1);
  CHECK((*rounds)[0].drawn_at == 1764892800);
}

TEST_CASE("verify passes on an intact archive and names each difference once a byte changed") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  REQUIRE(ArchiveAndStartNext(path, 3));
  auto intact = VerifyRound(path, 3);
  REQUIRE(intact);
  CHECK(intact->ok());
  // One digit of a winner's document.
  std::string rows = kRows;
  rows[rows.find("00012345")] = '9';
  const std::string archived = ArchivedRoundFiles(path, 3).bets;
  WriteFile(archived, rows);
  auto changed = VerifyRound(path, 3);
  REQUIRE(changed);
  CHECK_FALSE(changed->ok());
  std::string all;
  for (const std::string& d : changed->differences) all += d + "\n";
  CHECK(all.find("SHA-256") != std::string::npos);
  CHECK(all.find("agency 2") != std::string::npos);
  CHECK_FALSE(VerifyRound(path, 4));  // not archived
}

TEST_CASE("start-up finishes an open that a crash interrupted after the archive was whole") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  const RoundFiles archived = ArchivedRoundFiles(path, 3);
  std::filesystem::create_directories(std::filesystem::path(archived.bets).parent_path());
  for (auto [from, to] : {std::pair{path + ".result", archived.result},
                          {path, archived.bets},
                          {path + ".journal", archived.journal}}) {
    REQUIRE(::link(from.c_str(), to.c_str()) == 0);
  }
  auto opened = FinishInterruptedOpen(path);
  REQUIRE(opened);
  CHECK(opened->value() == 4);
  CHECK(testing::ReadFile(path).empty());
  CHECK(testing::ReadFile(archived.bets) == kRows);
  CHECK(VerifyRound(path, 3).value().ok());
  // Nothing left to finish.
  CHECK_FALSE(FinishInterruptedOpen(path).value().has_value());
}

TEST_CASE("start-up leaves a drawn round whose archive is not whole as the current round") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  const RoundFiles archived = ArchivedRoundFiles(path, 3);
  std::filesystem::create_directories(std::filesystem::path(archived.bets).parent_path());
  REQUIRE(::link(path.c_str(), archived.bets.c_str()) == 0);  // the journal link is missing
  CHECK_FALSE(FinishInterruptedOpen(path).value().has_value());
  CHECK(testing::ReadFile(path) == kRows);
  // Opening again completes the archive over the links already there.
  REQUIRE(ArchiveAndStartNext(path, 3));
  CHECK(VerifyRound(path, 3).value().ok());
}

TEST_CASE("a round drawn by a release without result files is archived at start-up") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  REQUIRE(::unlink((path + ".result").c_str()) == 0);
  auto opened = FinishInterruptedOpen(path);
  REQUIRE(opened);
  CHECK(opened->value() == 4);
  CHECK(testing::ReadFile(ArchivedRoundFiles(path, 3).bets) == kRows);
  auto rounds = ListArchivedRounds(path);
  REQUIRE(rounds);
  REQUIRE(rounds->size() == 1);
  CHECK((*rounds)[0].bets == 2);  // from its journal
  CHECK((*rounds)[0].drawn_at == 0);
}

TEST_CASE("opening the next round is refused until the round is drawn, then resets it") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  WriteDrawnRound(path);
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  SharedState& s = shared->state();
  s.round.store(3);
  s.slots[2].bets_stored = 2;
  s.slots[2].finished = true;
  s.finished_count = 1;
  auto refused = OpenNextRound(path, *shared);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().message.find("round 3 is open, not drawn") != std::string::npos);
  CHECK(testing::ReadFile(path) == kRows);
  s.draw_state = DrawState::kDone;
  s.betting_closed = true;
  auto opened = OpenNextRound(path, *shared);
  REQUIRE(opened);
  CHECK(*opened == 4);
  CHECK(s.round.load() == 4);
  CHECK(s.metrics.round.load() == 4);
  CHECK(s.draw_state == DrawState::kNotYet);
  CHECK_FALSE(s.betting_closed);
  CHECK(s.slots[2].bets_stored == 0);
  CHECK_FALSE(s.slots[2].finished);
  CHECK(s.finished_count == 0);
  CHECK(VerifyRound(path, 3).value().ok());
  CHECK_FALSE(OpenNextRound(path, *shared));  // round 4 is not drawn
}

}  // namespace
}  // namespace lottery
