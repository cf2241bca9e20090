#include "storage/bet_store.h"

#include <doctest/doctest.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <fstream>
#include <map>
#include <vector>

#include "common/csv.h"
#include "common/test_util.h"
#include "storage/batch_journal.h"
#include "storage/bets_file_row.h"
#include "storage/recovery.h"
#include "storage/store_test_util.h"

namespace lottery {
namespace {

std::string Rows(std::uint32_t agency, int first, int count) {
  std::string rows;
  for (int i = first; i < first + count; ++i) {
    std::string doc = std::to_string(10000000 + i);
    AppendBetRow(rows, BetView{agency, "Ana, \"la\" María", "Núñez", doc, "1980-05-17",
                               static_cast<std::uint32_t>(i % 10000)});
  }
  return rows;
}

std::vector<BetView> ReadAll(const BetStore& store, std::uint64_t& skipped,
                             std::vector<std::string>& docs) {
  std::vector<BetView> bets;
  REQUIRE(testing::ForEachStoredBet(
      store.path(),
      [&](const BetView& b) {
        docs.emplace_back(b.document);
        bets.push_back(b);
      },
      skipped));
  return bets;
}

TEST_CASE("always: each append is synced before it returns; never: no sync at all") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(3);
  REQUIRE(shared);
  SyncState& sync = shared->state().sync;
  auto store = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
  REQUIRE(store);
  std::string first = Rows(1, 0, 4);
  REQUIRE(testing::AppendDurably(*store, first, *shared, 1, 1, 4).value());
  CHECK(sync.syncs == 1);
  CHECK(sync.written_end.load() == first.size());
  CHECK(sync.durable_end.load() == first.size());
  REQUIRE(testing::AppendDurably(*store, Rows(1, 4, 2), *shared, 1, 2, 2).value());
  CHECK(sync.syncs == 2);
  CHECK(sync.durable_end.load() == testing::ReadFile(dir.File("bets.csv")).size());

  auto other = SharedSegment::Create(3);
  REQUIRE(other);
  auto lazy = BetStore::Open(dir.File("lazy.csv"), SyncMode::kNever);
  REQUIRE(lazy);
  REQUIRE(testing::AppendDurably(*lazy, Rows(1, 0, 4), *other, 1, 1, 4).value());
  REQUIRE(lazy->MakeAllDurable(*other));
  CHECK(other->state().sync.syncs == 0);
  CHECK(other->state().sync.durable_end.load() == 0);
}

TEST_CASE("group commit: one fdatasync covers every batch written before it") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(3);
  REQUIRE(shared);
  SyncState& sync = shared->state().sync;
  auto a = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
  auto b = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
  REQUIRE(a);
  REQUIRE(b);
  // Two writers have written (as two workers do between their flock and
  // their sync); neither has synced yet.
  std::string one = Rows(1, 0, 3);
  std::string two = Rows(2, 0, 5);
  REQUIRE(::pwrite(a->fd(), one.data(), one.size(), 0) == static_cast<ssize_t>(one.size()));
  sync.written_end.store(one.size());
  REQUIRE(::pwrite(b->fd(), two.data(), two.size(), static_cast<off_t>(one.size())) ==
          static_cast<ssize_t>(two.size()));
  sync.written_end.store(one.size() + two.size());
  // The first to sync covers both.
  REQUIRE(a->MakeDurable(*shared, one.size()));
  CHECK(sync.syncs == 1);
  CHECK(sync.durable_end.load() == one.size() + two.size());
  REQUIRE(b->MakeDurable(*shared, one.size() + two.size()));
  CHECK(sync.syncs == 1);
  CHECK(sync.covered == 1);
  // Bytes written later need a new sync.
  REQUIRE(testing::AppendDurably(*b, Rows(2, 5, 1), *shared, 2, 1, 1).value());
  CHECK(sync.syncs == 2);
}

TEST_CASE("AppendBatches: one write and one journal record for consecutive batches") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  auto store = BetStore::Open(dir.File("bets.csv"), SyncMode::kNever);
  REQUIRE(store);
  std::string rows = Rows(1, 0, 2);
  const std::size_t first_end = rows.size();
  rows += Rows(1, 2, 3);
  const std::size_t second_end = rows.size();
  rows += Rows(1, 5, 1);
  const BatchExtent extents[] = {
      {1, 2, first_end, 0}, {2, 3, second_end, 0}, {3, 1, rows.size(), 0}};
  auto outcome = store->AppendBatches(rows, *shared, 1, extents);
  REQUIRE(outcome);
  CHECK(outcome->skipped == 0);
  CHECK(outcome->end == rows.size());
  CHECK(testing::ReadFile(dir.File("bets.csv")) == rows);
  const AgencySlot& slot = shared->state().slots[1];
  CHECK(slot.last_seq == 3);
  CHECK(slot.bets_stored == 6);
  CHECK(shared->state().total_bets == 6);
  CHECK(shared->state().sync.written_end.load() == rows.size());
  // The journal's one record: the last seq, the bets of all, their end.
  std::string journal = testing::ReadFile(dir.File("bets.csv.journal"));
  REQUIRE(journal.size() == kJournalRecordSize);
  auto record = DecodeJournalRecord(journal.data());
  REQUIRE(record);
  CHECK(record->kind == JournalKind::kBatch);
  CHECK(record->agency == 1);
  CHECK(record->seq == 3);
  CHECK(record->count == 6);
  CHECK(record->end == rows.size());

  // The same batches again (a reconnect re-sent them): nothing is written.
  auto again = store->AppendBatches(rows, *shared, 1, extents);
  REQUIRE(again);
  CHECK(again->skipped == 3);
  CHECK(again->end == 0);
  CHECK(testing::ReadFile(dir.File("bets.csv")) == rows);
  CHECK(testing::ReadFile(dir.File("bets.csv.journal")).size() == kJournalRecordSize);

  // 3 is stored; 3..5 sent together store 4 and 5 only.
  std::string more = Rows(1, 5, 1);
  const std::size_t third_end = more.size();
  more += Rows(1, 6, 4);
  const std::size_t fourth_end = more.size();
  more += Rows(1, 10, 2);
  const BatchExtent next[] = {{3, 1, third_end, 0}, {4, 4, fourth_end, 0}, {5, 2, more.size(), 0}};
  auto partly = store->AppendBatches(more, *shared, 1, next);
  REQUIRE(partly);
  CHECK(partly->skipped == 1);
  CHECK(testing::ReadFile(dir.File("bets.csv")) == rows + more.substr(third_end));
  CHECK(slot.last_seq == 5);
  CHECK(slot.bets_stored == 12);
}

TEST_CASE("group commit: a leader that died mid-sync does not block the writers after it") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  SyncState& sync = shared->state().sync;
  auto store = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
  REQUIRE(store);
  std::string rows = Rows(1, 0, 4);
  REQUIRE(::pwrite(store->fd(), rows.data(), rows.size(), 0) == static_cast<ssize_t>(rows.size()));
  sync.written_end.store(rows.size());
  // A leader killed between taking the lead and finishing: its pid is gone.
  pid_t dead = ::fork();
  REQUIRE(dead >= 0);
  if (dead == 0) ::_exit(0);
  REQUIRE(::waitpid(dead, nullptr, 0) == dead);
  sync.leader = dead;
  REQUIRE(store->MakeDurable(*shared, rows.size()));
  CHECK(sync.leader == 0);
  CHECK(sync.syncs == 1);
  CHECK(sync.durable_end.load() == rows.size());
  CHECK(sync.completed.load() == 1);
}

TEST_CASE("group commit: a writer waits for the sync in flight and is covered by it") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  SyncState& sync = shared->state().sync;
  auto store = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
  REQUIRE(store);
  std::string rows = Rows(1, 0, 4);
  REQUIRE(::pwrite(store->fd(), rows.data(), rows.size(), 0) == static_cast<ssize_t>(rows.size()));
  sync.written_end.store(rows.size());
  // This process plays a live leader (itself, so kill(pid, 0) succeeds);
  // a child asks for the same bytes and must sleep until the lead ends.
  sync.leader = ::getpid();
  pid_t writer = ::fork();
  REQUIRE(writer >= 0);
  if (writer == 0) {
    auto own = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
    ::_exit(own && own->MakeDurable(*shared, rows.size()) ? 0 : 1);
  }
  ::usleep(50'000);
  int status = 0;
  CHECK(::waitpid(writer, &status, WNOHANG) == 0);  // still waiting for the leader
  // The leader finishes: on disk up to written_end, one wake-up for all.
  REQUIRE(::fdatasync(store->fd()) == 0);
  {
    pthread_mutex_lock(&sync.mutex);
    sync.leader = 0;
    ++sync.syncs;
    sync.durable_end.store(rows.size());
    sync.completed.fetch_add(1);
    pthread_mutex_unlock(&sync.mutex);
  }
  ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&sync.completed), FUTEX_WAKE, INT_MAX,
            nullptr, nullptr, 0);
  REQUIRE(::waitpid(writer, &status, 0) == writer);
  CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  CHECK(sync.syncs == 1);  // the writer did not sync again
  CHECK(sync.covered == 1);
}

TEST_CASE("group commit across processes: concurrent writers share syncs") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(8);
  REQUIRE(shared);
  const int writers = 6;
  const int batches = 40;
  std::vector<pid_t> pids;
  for (int w = 1; w <= writers; ++w) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      auto store = BetStore::Open(dir.File("bets.csv"), SyncMode::kAlways);
      if (!store) ::_exit(1);
      for (int i = 1; i <= batches; ++i) {
        auto r = testing::AppendDurably(*store, Rows(w, i * 10, 10), *shared, w, i, 10);
        if (!r || !*r) ::_exit(2);
      }
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ::waitpid(pid, &status, 0);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
  }
  SyncState& sync = shared->state().sync;
  const std::uint64_t size = testing::ReadFile(dir.File("bets.csv")).size();
  CHECK(sync.durable_end.load() == size);
  CHECK(sync.written_end.load() == size);
  // Every request was either a sync or covered by one, and nothing synced twice for nothing.
  CHECK(sync.syncs + sync.covered == static_cast<std::uint64_t>(writers * batches));
  CHECK(sync.syncs >= 1);
  MESSAGE("fdatasync calls: ", sync.syncs, " for ", writers * batches, " batches");
}

TEST_CASE("start-up recovery cuts a torn last line and nothing else") {
  testing::TempDir dir;
  std::string rows = Rows(1, 0, 3);
  struct Case {
    std::string text;
    std::uint64_t cut;
  };
  std::string big = Rows(2, 0, 200);  // more than one 4 KiB block back
  for (const Case& c : {Case{rows, 0}, Case{rows + "1,Ana,Paz,123", 13}, Case{rows + "1,Ana\r", 6},
                        Case{"1,Ana,Paz", 9}, Case{"", 0},
                        Case{rows + std::string(9000, 'x'), 9000}, Case{big, 0}}) {
    std::string path = dir.File("bets.csv");
    std::ofstream(path, std::ios::binary | std::ios::trunc) << c.text;
    auto store = StartupRecovery::Open(path, SyncMode::kAlways);
    REQUIRE(store);
    auto cut = store->CutTornTail();
    REQUIRE(cut);
    CHECK(*cut == c.cut);
    std::string after = testing::ReadFile(path);
    CHECK(after == c.text.substr(0, c.text.size() - c.cut));
    CHECK((after.empty() || after.back() == '\n'));
  }
}

TEST_CASE("append stores a batch and records its sequence in the shared segment") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(3);
  REQUIRE(shared);
  auto store = BetStore::Open(dir.File("bets.csv"));
  REQUIRE(store);
  std::string rows = Rows(2, 0, 5);
  REQUIRE(testing::AppendDurably(*store, rows, *shared, 2, 1, 5).value());
  REQUIRE(testing::AppendDurably(*store, Rows(2, 5, 3), *shared, 2, 2, 3));
  CHECK(shared->state().slots[2].last_seq == 2);
  CHECK(shared->state().slots[2].bets_stored == 8);
  CHECK(shared->state().total_bets == 8);
  CHECK_FALSE(shared->state().pending.active);
  CHECK(testing::ReadFile(dir.File("bets.csv")) == rows + Rows(2, 5, 3));
  std::uint64_t skipped = 0;
  std::vector<std::string> docs;
  auto bets = ReadAll(*store, skipped, docs);
  CHECK(bets.size() == 8);
  CHECK(skipped == 0);
  CHECK(docs.front() == "10000000");
  CHECK(docs.back() == "10000007");
}

TEST_CASE("concurrent appends from many processes never interleave a batch") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(4);
  REQUIRE(shared);
  const std::string path = dir.File("bets.csv");
  constexpr int kBatches = 40;
  constexpr int kPerBatch = 25;
  std::vector<pid_t> children;
  for (std::uint32_t agency = 1; agency <= 4; ++agency) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      // Each worker opens its own descriptor, as the server's workers do.
      auto store = BetStore::Open(path);
      int code = 0;
      for (int b = 0; b < kBatches && store; ++b) {
        std::string rows =
            Rows(agency, static_cast<int>(agency) * 100000 + b * kPerBatch, kPerBatch);
        if (!testing::AppendDurably(*store, rows, *shared, agency,
                                    static_cast<std::uint64_t>(b + 1), kPerBatch))
          code = 1;
      }
      ::_exit(store ? code : 2);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }
  auto store = BetStore::Open(path);
  REQUIRE(store);
  std::uint64_t skipped = 0;
  std::vector<std::string> docs;
  auto bets = ReadAll(*store, skipped, docs);
  CHECK(skipped == 0);
  REQUIRE(bets.size() == 4 * kBatches * kPerBatch);
  // Rows come in whole batches: each run of kPerBatch rows has one agency and
  // consecutive documents.
  for (std::size_t i = 0; i < bets.size(); i += kPerBatch) {
    for (std::size_t j = 1; j < kPerBatch; ++j) {
      CHECK(bets[i + j].agency == bets[i].agency);
      CHECK(std::stoll(docs[i + j]) == std::stoll(docs[i]) + static_cast<long long>(j));
    }
  }
  for (std::uint32_t a = 1; a <= 4; ++a) {
    CHECK(shared->state().slots[a].last_seq == kBatches);
    CHECK(shared->state().slots[a].bets_stored == kBatches * kPerBatch);
  }
}

TEST_CASE("a batch of a writer that died is committed when whole, cut when torn") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(2);
  REQUIRE(shared);
  auto store = BetStore::Open(dir.File("bets.csv"));
  REQUIRE(store);
  std::string first = Rows(1, 0, 2);
  REQUIRE(testing::AppendDurably(*store, first, *shared, 1, 1, 2));
  SharedState& s = shared->state();

  SUBCASE("whole batch reached the file") {
    std::string rows = Rows(1, 2, 3);
    s.pending = PendingAppend{true, 1, 2, 3, first.size(), rows.size()};
    std::ofstream(dir.File("bets.csv"), std::ios::app | std::ios::binary) << rows;
    REQUIRE(testing::AppendDurably(*store, Rows(2, 100, 1), *shared, 2, 1, 1));
    CHECK(s.slots[1].last_seq == 2);
    CHECK(s.slots[1].bets_stored == 5);
    CHECK(testing::ReadFile(dir.File("bets.csv")) == first + rows + Rows(2, 100, 1));
    // The dead writer never wrote its journal record; the repair did.
    std::string journal = testing::ReadFile(dir.File("bets.csv.journal"));
    REQUIRE(journal.size() == 3 * kJournalRecordSize);
    auto repaired = DecodeJournalRecord(journal.data() + kJournalRecordSize);
    REQUIRE(repaired);
    CHECK(*repaired == JournalRecord{JournalKind::kBatch, 1, 3, 2, first.size() + rows.size()});
    CHECK(DecodeJournalRecord(journal.data() + 2 * kJournalRecordSize)->agency == 2);
  }
  SUBCASE("torn batch is cut off") {
    std::string rows = Rows(1, 2, 3);
    s.pending = PendingAppend{true, 1, 2, 3, first.size(), rows.size()};
    std::ofstream(dir.File("bets.csv"), std::ios::app | std::ios::binary) << rows.substr(0, 17);
    REQUIRE(testing::AppendDurably(*store, Rows(2, 100, 1), *shared, 2, 1, 1));
    CHECK(s.slots[1].last_seq == 1);
    CHECK(s.slots[1].bets_stored == 2);
    CHECK(testing::ReadFile(dir.File("bets.csv")) == first + Rows(2, 100, 1));
  }
  SUBCASE("nothing was written") {
    s.pending = PendingAppend{true, 1, 2, 3, first.size(), 300};
    REQUIRE(testing::AppendDurably(*store, Rows(2, 100, 1), *shared, 2, 1, 1));
    CHECK(s.slots[1].last_seq == 1);
    CHECK(testing::ReadFile(dir.File("bets.csv")) == first + Rows(2, 100, 1));
  }
  CHECK_FALSE(s.pending.active);
}

TEST_CASE(
    "a batch re-sent after its writer died between write and bookkeeping is not stored twice") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  auto store = BetStore::Open(dir.File("bets.csv"));
  REQUIRE(store);
  std::string first = Rows(1, 0, 2);
  REQUIRE(testing::AppendDurably(*store, first, *shared, 1, 1, 2).value());
  // The dead writer's batch 2 reached the file whole; its slot still says 1.
  std::string second = Rows(1, 2, 3);
  shared->state().pending = PendingAppend{true, 1, 2, 3, first.size(), second.size()};
  std::ofstream(dir.File("bets.csv"), std::ios::app | std::ios::binary) << second;
  SUBCASE("the agency re-sends it straight away") {
    auto again = testing::AppendDurably(*store, second, *shared, 1, 2, 3);
    REQUIRE(again);
    CHECK_FALSE(*again);
  }
  SUBCASE("the agency reconnects first") {
    REQUIRE(store->Recover(*shared));
    CHECK(shared->state().slots[1].last_seq == 2);
  }
  CHECK(testing::ReadFile(dir.File("bets.csv")) == first + second);
  CHECK(shared->state().slots[1].bets_stored == 5);
}

TEST_CASE("a failed write leaves the file as it was and records nothing") {
  testing::TempDir dir;
  auto shared = SharedSegment::Create(1);
  REQUIRE(shared);
  const std::string path = dir.File("bets.csv");
  auto store = BetStore::Open(path);
  REQUIRE(store);
  std::string first = Rows(1, 0, 2);
  REQUIRE(testing::AppendDurably(*store, first, *shared, 1, 1, 2));
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // The file may grow only a few bytes: the next batch is cut short by EFBIG.
    ::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{first.size() + 10, first.size() + 10};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    auto child_store = BetStore::Open(path);
    bool failed =
        child_store && !testing::AppendDurably(*child_store, Rows(1, 2, 5), *shared, 1, 2, 5);
    ::_exit(failed ? 0 : 1);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  CHECK(testing::ReadFile(path) == first);
  CHECK(shared->state().slots[1].last_seq == 1);
  CHECK(shared->state().slots[1].bets_stored == 2);
  CHECK_FALSE(shared->state().pending.active);
  // And the store keeps working afterwards.
  REQUIRE(testing::AppendDurably(*store, Rows(1, 2, 5), *shared, 1, 2, 5));
  CHECK(shared->state().slots[1].bets_stored == 7);
}

TEST_CASE("reading skips a torn last line and lines that do not parse") {
  testing::TempDir dir;
  const std::string path = dir.File("bets.csv");
  std::string rows = Rows(1, 0, 3);
  std::ofstream(path, std::ios::binary) << rows << "garbage line\r\n"
                                        << Rows(1, 3, 1) << "1,Ana,Paz,123,1990-0";
  auto store = BetStore::Open(path);
  REQUIRE(store);
  std::uint64_t skipped = 0;
  std::vector<std::string> docs;
  auto bets = ReadAll(*store, skipped, docs);
  CHECK(bets.size() == 4);
  CHECK(skipped == 2);
}

}  // namespace
}  // namespace lottery

namespace lottery {
namespace {

TEST_CASE("rows are written exactly as docs/STORAGE.md shows") {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md");
  auto start = doc.find("```\n", doc.find("## Format"));
  REQUIRE(start != std::string::npos);
  start += 4;
  auto end = doc.find("```", start);
  REQUIRE(end != std::string::npos);
  std::string expected;
  std::istringstream lines(doc.substr(start, end - start));
  for (std::string line; std::getline(lines, line);) {
    REQUIRE(line.ends_with("\\r\\n"));
    expected += line.substr(0, line.size() - 4) + "\r\n";
  }
  std::string rows;
  AppendBetRow(rows, BetView{2, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201});
  AppendBetRow(rows, BetView{2, "Ana \"la\" María, hija", "Núñez", "00012345", "1980-05-17", 7574});
  CHECK(rows == expected);
}

TEST_CASE("the bets file and its journal are created 0640 whatever the umask") {
  for (mode_t mask : {mode_t{0}, mode_t{022}, mode_t{077}}) {
    testing::TempDir dir;
    const mode_t old = ::umask(mask);
    auto store = BetStore::Open(dir.File("bets.csv"));
    ::umask(old);
    REQUIRE(store);
    for (const char* name : {"bets.csv", "bets.csv.journal"}) {
      struct stat st {};
      REQUIRE(::stat(dir.File(name).c_str(), &st) == 0);
      CHECK_MESSAGE((st.st_mode & 0777) == 0640, name, " umask ", mask);
    }
  }
}

}  // namespace
}  // namespace lottery
