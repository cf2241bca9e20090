#include "storage/recovery.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "storage/batch_journal.h"
#include "wire/row_digest.h"

namespace lottery {
namespace {

class Files {
 public:
  Files() {
    data_.Reset(::open(dir_.File("bets.csv").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    journal_.Reset(
        ::open(dir_.File("bets.csv.journal").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    REQUIRE(data_.valid());
    REQUIRE(journal_.valid());
  }
  void Data(const std::string& text) { Append(dir_.File("bets.csv"), text); }
  void Record(const JournalRecord& r) {
    std::string bytes;
    EncodeJournalRecord(bytes, r);
    Append(dir_.File("bets.csv.journal"), bytes);
  }
  void JournalBytes(const std::string& bytes) { Append(dir_.File("bets.csv.journal"), bytes); }
  std::string data() const { return testing::ReadFile(dir_.File("bets.csv")); }
  std::string journal() const { return testing::ReadFile(dir_.File("bets.csv.journal")); }
  int data_fd() const { return data_.get(); }
  std::string path() const { return dir_.File("bets.csv"); }
  int journal_fd() const { return journal_.get(); }

 private:
  static void Append(const std::string& path, const std::string& text) {
    std::ofstream(path, std::ios::app | std::ios::binary) << text;
  }
  testing::TempDir dir_;
  UniqueFd data_;
  UniqueFd journal_;
};

JournalRecord Batch(std::uint32_t agency, std::uint64_t seq, std::uint32_t count,
                    std::uint64_t end) {
  return JournalRecord{JournalKind::kBatch, agency, count, seq, end};
}

// Start-up as the parent runs it, on the files of `f`, for two agencies.
Result<WinnerIndexSummary> StartUp(const Files& f, SharedSegment& shared) {
  auto store = StartupRecovery::Open(f.path(), SyncMode::kNever);
  REQUIRE(store);
  auto round = store->RecoverCurrentRound(2);
  REQUIRE(round);
  REQUIRE(store->Publish(*round, shared));
  return store->IndexWinners(shared, 2, 7574);
}

TEST_CASE("start-up digests each agency's rows of the resumed round, and only those") {
  const std::string old_row = "1,Old,Row,9,1980-01-01,5\r\n";
  const std::vector<std::string> rows = {"Ana,Paz,1,1990-01-01,7", "Bea,Sol,2,1990-01-01,8",
                                         "\"Ana \"\"la\"\", hija\",Rey,3,1991-02-03,7574",
                                         "Dora,Luz,4,1992-01-01,9"};
  Files f;
  f.Data(old_row);  // an earlier round's bet: not this round's
  std::uint64_t end = old_row.size();
  f.Record({JournalKind::kRoundStart, 0, 0, 2, end});
  auto append = [&](std::uint32_t agency, std::uint64_t seq, std::vector<std::string> batch) {
    std::string text;
    for (const std::string& row : batch) text += std::to_string(agency) + "," + row + "\r\n";
    f.Data(text);
    end += text.size();
    f.Record(Batch(agency, seq, static_cast<std::uint32_t>(batch.size()), end));
  };
  append(1, 1, {rows[0], rows[1]});
  append(2, 1, {rows[2]});  // quoted and winning: the scan's slow path
  append(1, 2, {rows[3]});
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  REQUIRE(StartUp(f, *shared));
  StoredRows one;
  for (int i : {0, 1, 3}) one.Add(rows[i]);
  StoredRows two;
  two.Add(rows[2]);
  CHECK(shared->state().slots[1].bets_stored == 3);
  CHECK(shared->state().slots[1].stored_digest == one.digest);
  CHECK(shared->state().slots[2].stored_digest == two.digest);
}

TEST_CASE("start-up fails when the round's rows are not the journal's bets") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 1, 0});
  // The journal says agency 1 stored two bets; the file holds one of
  // agency 1 and one of agency 2.
  const std::string text = "1,Ana,Paz,1,1990-01-01,7\r\n2,Bea,Sol,2,1990-01-01,8\r\n";
  f.Data(text);
  f.Record(Batch(1, 1, 2, text.size()));
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  auto started = StartUp(f, *shared);
  REQUIRE_FALSE(started);
  CHECK(started.error().kind == ErrorKind::kCorruptData);
  CHECK(started.error().message.find("agency 1 has 1 bets") != std::string::npos);
  CHECK(started.error().message.find("journal records 2") != std::string::npos);
}

TEST_CASE("no journal: a new round starts over what the file holds") {
  Files f;
  f.Data("old rows\r\n");
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 3);
  REQUIRE(r);
  CHECK_FALSE(r->resumed);
  CHECK(r->batches == 0);
  CHECK(f.data() == "old rows\r\n");
  REQUIRE(f.journal().size() == kJournalRecordSize);
  auto start = DecodeJournalRecord(f.journal().data());
  REQUIRE(start);
  CHECK(start->kind == JournalKind::kRoundStart);
  CHECK(start->end == 10);
  CHECK(r->number == 1);
  CHECK(start->seq == 1);
}

TEST_CASE("an unfinished round is resumed with each agency's progress") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 0, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(1, 1, 2, 6));
  f.Data("bbbbbbbb\r\n");
  f.Record(Batch(3, 1, 5, 16));
  f.Data("cc\r\n");
  f.Record(Batch(1, 2, 1, 20));
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 3);
  REQUIRE(r);
  CHECK(r->resumed);
  CHECK(r->batches == 3);
  CHECK(r->bets == 8);
  CHECK(r->agencies[1].last_seq == 2);
  CHECK(r->agencies[1].bets == 3);
  CHECK(r->agencies[2].last_seq == 0);
  CHECK(r->agencies[3].last_seq == 1);
  CHECK(r->data_bytes_cut == 0);
  CHECK(r->journal_bytes_cut == 0);
  CHECK(f.data().size() == 20);
}

TEST_CASE("rows without a record and records without their rows are cut") {
  SUBCASE("rows written, record not (crash between the two)") {
    Files f;
    f.Record({JournalKind::kRoundStart, 0, 0, 0, 0});
    f.Data("aaaa\r\n");
    f.Record(Batch(1, 1, 2, 6));
    f.Data("unjournaled\r\n");
    auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 2);
    REQUIRE(r);
    CHECK(r->data_bytes_cut == 13);
    CHECK(f.data() == "aaaa\r\n");
    CHECK(r->agencies[1].last_seq == 1);
  }
  SUBCASE("record on disk, rows not all (sync = never, power loss)") {
    Files f;
    f.Record({JournalKind::kRoundStart, 0, 0, 0, 0});
    f.Data("aaaa\r\n");
    f.Record(Batch(1, 1, 2, 6));
    f.Data("bb");
    f.Record(Batch(1, 2, 2, 12));
    auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 2);
    REQUIRE(r);
    CHECK(r->agencies[1].last_seq == 1);
    CHECK(r->journal_bytes_cut == kJournalRecordSize);
    CHECK(r->data_bytes_cut == 2);
    CHECK(f.data() == "aaaa\r\n");
    CHECK(f.journal().size() == 2 * kJournalRecordSize);
  }
  SUBCASE("a torn record") {
    Files f;
    f.Record({JournalKind::kRoundStart, 0, 0, 0, 0});
    f.Data("aaaa\r\n");
    f.Record(Batch(2, 1, 2, 6));
    f.JournalBytes("LBJ1\x02garbage");
    auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 2);
    REQUIRE(r);
    CHECK(r->journal_bytes_cut == 12);
    CHECK(r->agencies[2].last_seq == 1);
    CHECK(f.journal().size() == 2 * kJournalRecordSize);
  }
}

TEST_CASE("a round the journal says was drawn needs its result") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 2, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(1, 1, 2, 6));
  f.Record({JournalKind::kRoundComplete, 0, 0, 0, 6});
  const std::string journal = f.journal();
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 1);
  REQUIRE_FALSE(r);
  CHECK(r.error().kind == ErrorKind::kCorruptData);
  CHECK(f.journal() == journal);
  RoundResult other;
  other.round = 1;
  other.took_part = {false, true};
  other.winners = {{}, {}};
  CHECK_FALSE(RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 1, other));
}

TEST_CASE("a drawn round is kept as it is, with its result, until the next round opens") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 6, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(1, 4, 2, 6));
  f.Record({JournalKind::kAgencyFinished, 1, 2, 0, 6});
  f.Data("torn");  // not cut: the draw read the file as it was
  RoundResult result;
  result.round = 6;
  result.bets = 2;
  result.bets_file_size = 6;
  result.took_part = {false, true, false};
  result.winners = {{}, {"1"}, {}};
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 2, result);
  REQUIRE(r);
  CHECK(r->resumed);
  CHECK(r->number == 6);
  CHECK(r->state == RoundState::kDrawn);
  CHECK(r->betting_closed);
  REQUIRE(r->result);
  CHECK(*r->result == result);
  CHECK(r->agencies[1].finished);
  CHECK_FALSE(r->agencies[2].finished);
  CHECK(r->agencies[1].last_seq == 4);
  CHECK(f.data() == "aaaa\r\ntorn");
  // The round-complete record a crash kept from the journal is written.
  REQUIRE(f.journal().size() == 4 * kJournalRecordSize);
  CHECK(DecodeJournalRecord(f.journal().data() + 3 * kJournalRecordSize)->kind ==
        JournalKind::kRoundComplete);
  CHECK(RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 2, result));
  CHECK(f.journal().size() == 4 * kJournalRecordSize);
  // Another number of agencies cannot serve it.
  auto fewer = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 1, result);
  REQUIRE_FALSE(fewer);
  CHECK(fewer.error().kind == ErrorKind::kConfig);
}

TEST_CASE("FINISHED and betting-closed records come back after a restart") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 5, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(1, 1, 2, 6));
  f.Record({JournalKind::kAgencyFinished, 1, 2, 0, 6});
  f.Data("bb\r\n");
  f.Record(Batch(2, 1, 1, 10));
  f.Record({JournalKind::kBettingClosed, 0, 0, 0, 10});
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 3);
  REQUIRE(r);
  CHECK(r->resumed);
  CHECK(r->number == 5);
  CHECK(r->state == RoundState::kClosed);
  CHECK(r->betting_closed);
  CHECK(r->agencies[1].finished);
  CHECK_FALSE(r->agencies[2].finished);
  CHECK(r->agencies[2].bets == 1);
  CHECK(r->bets == 3);
  CHECK(f.journal().size() == 5 * kJournalRecordSize);
}

TEST_CASE("a resumed round keeps its number") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 6, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(1, 1, 2, 6));
  auto resumed = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 1);
  REQUIRE(resumed);
  CHECK(resumed->resumed);
  CHECK(resumed->number == 6);
  CHECK(resumed->state == RoundState::kOpen);
}

TEST_CASE("a round in progress with more agencies than configured is refused untouched") {
  Files f;
  f.Record({JournalKind::kRoundStart, 0, 0, 0, 0});
  f.Data("aaaa\r\n");
  f.Record(Batch(5, 1, 2, 6));
  f.Data("more\r\n");
  const std::string journal = f.journal();
  auto r = RecoverRound(FileLock(f.data_fd()), f.data_fd(), f.journal_fd(), 3);
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("agency 5") != std::string::npos);
  CHECK(r.error().kind == ErrorKind::kConfig);  // the server exits 78 for it
  CHECK(f.journal() == journal);
  CHECK(f.data() == "aaaa\r\nmore\r\n");
}

}  // namespace
}  // namespace lottery
