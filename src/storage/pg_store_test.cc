// pg_store.h against a real PostgreSQL: LOTTERY_TEST_PG_DSN names it (a
// superuser's DSN on a throwaway database), LOTTERY_TEST_PG_PASSWORD_DSN a
// role that must give a password. tests/integration/pg_store_test.py starts
// a cluster and runs this binary; without the variable every test fails.
#include "storage/pg_store.h"

#include <netinet/in.h>
#include <openssl/evp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>

#include <doctest/doctest.h>
#include <fmt/format.h>

#include "storage/bets_file_row.h"
#include "storage/pg_sql.h"
#include "wire/bet_row.h"
#include "wire/row_digest.h"

namespace lottery {
namespace {

constexpr auto kTimeout = std::chrono::seconds(5);
constexpr std::uint32_t kWinning = 7;

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  const std::string why = std::string(name) + " is not set: run tests/integration/pg_store_test.py";
  REQUIRE_MESSAGE(value != nullptr, why);
  return value;
}

// The error's message, or "" (doctest evaluates a message lazily, also on
// success with -s: it must not touch error() then).
template <typename T>
std::string Why(const Result<T>& result) {
  return result ? std::string() : result.error().message;
}

PgSession Connect() {
  auto session = PgSession::Connect(Env("LOTTERY_TEST_PG_DSN"), "pg_store_test", kTimeout);
  REQUIRE_MESSAGE(session.has_value(), Why(session));
  return std::move(*session);
}

PgResult Sql(PgSession& session, const std::string& sql) {
  auto result = PgExec(session, sql.c_str());
  REQUIRE_MESSAGE(result.has_value(), Why(result));
  return std::move(*result);
}

std::string Value(PgSession& session, const std::string& sql) {
  PgResult r = Sql(session, sql);
  REQUIRE(PQntuples(r.get()) == 1);
  return std::string(PgText(r.get(), 0, 0));
}

// Every table of the schema gone.
void DropSchema(PgSession& session) {
  Sql(session,
      "DROP TABLE IF EXISTS lottery_schema, lottery_lease, rounds, agency_progress, "
      "batches, bets, bets_v1, winners, results CASCADE");
}

// A session on an empty database with the schema (every test starts here).
PgSession Fresh() {
  PgSession session = Connect();
  DropSchema(session);
  REQUIRE(EnsurePgSchema(session).has_value());
  return session;
}

// A session holding a fresh epoch (not the lease: tests take that apart).
std::uint64_t Epoch(PgSession& session) {
  auto epoch = BumpPgEpoch(session, "test");
  REQUIRE(epoch.has_value());
  return *epoch;
}

// One agency's bets, cut into batches; names hold commas and quotes.
struct Feed {
  std::uint32_t agency;
  std::vector<std::string> batch_rows;  // bets-file rows of each batch
  std::vector<BatchExtent> batches;     // rows_end relative to its batch
  std::vector<std::string> bet_rows;
  std::vector<BetView> bets;
  std::vector<std::string> docs;
  std::uint64_t digest = 0;

  explicit Feed(std::uint32_t a, std::vector<std::uint32_t> counts) : agency(a) {
    docs.reserve(1000);
    for (std::uint32_t count : counts) AddBatch(count);
  }
  void AddBatch(std::uint32_t count) {
    std::string rows;
    std::uint64_t batch_digest = 0;
    for (std::uint32_t i = 0; i < count; ++i) {
      const std::size_t pos = bet_rows.size();
      docs.push_back(fmt::format("{:08}", agency * 1000 + pos));
      BetView bet{agency,
                  pos % 3 == 0 ? "Ana \"la\" María, hija" : "Santiago Lionel",
                  pos % 2 ? "Núñez" : "Lorca",
                  docs.back(),
                  "1999-03-17",
                  static_cast<std::uint32_t>((pos * 37 + agency) % 10)};
      bet_rows.emplace_back();
      AppendBetRowText(bet_rows.back(), bet);
      AppendStoredRow(rows, AgencyColumn(agency), bet_rows.back());
      bets.push_back(bet);
      batch_digest += RowDigest(bet_rows.back(), pos);
    }
    digest += batch_digest;
    batches.push_back(BatchExtent{batches.size() + 1, count, rows.size(), 0, batch_digest});
    batch_rows.push_back(std::move(rows));
  }
};

// Batches [from, to) of a feed (0-based) as one group, owning its bytes.
struct Group {
  std::string rows;
  std::vector<BatchExtent> batches;
  PgBatchGroup group;

  Group(const Feed& f, std::size_t from, std::size_t to, std::uint64_t prev_seq_override = ~0ull) {
    std::uint64_t first = 0;
    for (std::size_t i = 0; i < from; ++i) first += f.batches[i].count;
    for (std::size_t i = from; i < to; ++i) {
      rows += f.batch_rows[i];
      batches.push_back(f.batches[i]);
      batches.back().rows_end = rows.size();
    }
    const std::uint64_t prev = prev_seq_override == ~0ull ? from : prev_seq_override;
    group = PgBatchGroup{f.agency, prev, first, rows, batches};
  }
};

Result<std::vector<PgGroupOutcome>> Store(PgSession& s, std::uint64_t epoch,
                                          std::initializer_list<const Group*> groups,
                                          std::uint64_t round = 1) {
  std::vector<PgBatchGroup> list;
  for (const Group* g : groups) list.push_back(g->group);
  return StorePgBatches(s, epoch, round, list);
}

std::uint64_t Count(PgSession& s, const char* where = "true") {
  return std::stoull(Value(s, fmt::format("SELECT count(*) FROM bets WHERE {}", where)));
}

// The round's rows as the bets file would hold them, in (agency, position) order.
std::string RowsBack(PgSession& s, std::uint64_t round) {
  std::string out;
  auto done = ForEachPgBet(s, round, [&](const PgBetRow& bet) {
    AppendStoredRow(out, AgencyColumn(bet.agency), bet.bet_row);
  });
  REQUIRE(done.has_value());
  return out;
}

PgSession Round1(std::uint64_t& epoch) {
  PgSession s = Fresh();
  REQUIRE(LoadPgRoundState(s, 10).has_value());
  epoch = Epoch(s);
  return s;
}

TEST_CASE("the schema is created once; another version is refused") {
  PgSession s = Fresh();
  CHECK(Value(s, "SELECT version FROM lottery_schema") == std::to_string(kPgSchemaVersion));
  auto state = LoadPgRoundState(s, 5);
  REQUIRE(state.has_value());
  CHECK(state->round == 1);
  CHECK(state->state == RoundState::kOpen);
  CHECK(EnsurePgSchema(s).has_value());
  CHECK(Value(s, "SELECT count(*) FROM rounds") == "1");
  CHECK(Value(s, "SELECT count(*) FROM lottery_schema") == "1");
  Sql(s, "UPDATE lottery_schema SET version = 3");
  auto other = EnsurePgSchema(s);
  REQUIRE_FALSE(other.has_value());
  CHECK(other.error().kind == ErrorKind::kConfig);
  auto upgrade = UpgradePgSchema(s);
  REQUIRE_FALSE(upgrade.has_value());
  CHECK(upgrade.error().kind == ErrorKind::kConfig);
}

// Version 1's bets table as released (every round's rows in one table,
// a BRIN index on round), made from a version-2 database's rows.
void DowngradeToVersion1(PgSession& s) {
  Sql(s,
      "CREATE TABLE bets_old (round bigint NOT NULL, agency int NOT NULL, position bigint NOT "
      "NULL, first_name text NOT NULL, last_name text NOT NULL, document text NOT NULL, "
      "birthdate date NOT NULL, number int NOT NULL)");
  Sql(s,
      "INSERT INTO bets_old SELECT round, agency, position, first_name, last_name, document, "
      "birthdate, number FROM bets");
  Sql(s, "DROP TABLE bets");
  Sql(s, "ALTER TABLE bets_old RENAME TO bets");
  Sql(s, "CREATE INDEX bets_round ON bets USING brin (round)");
  Sql(s, "UPDATE lottery_schema SET version = 1");
}

TEST_CASE("version 1 is upgraded: drawn rounds stay in its table, the open round moves") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed a(1, {40, 40}), b(2, {30});
  Group ga(a, 0, 2), gb(b, 0, 1);
  REQUIRE(Store(s, epoch, {&ga, &gb}).has_value());
  REQUIRE(RecordPgFinishedAll(s, epoch, 1, std::vector<std::uint32_t>{1, 2}) == true);
  REQUIRE(DrawPgRound(s, epoch, 1, 2, kWinning, 1764892800).has_value());
  const std::string round1 = RowsBack(s, 1);

  SUBCASE("round 2 open, one batch stored") {
    REQUIRE(OpenNextPgRound(s, epoch, 1, kWinning) == 2u);
    Group first(a, 0, 1);
    REQUIRE(Store(s, epoch, {&first}, 2).has_value());
    const std::string round2 = RowsBack(s, 2);
    DowngradeToVersion1(s);
    auto refused = CheckPgSchema(s);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().message.find("upgrades it") != std::string::npos);
    CHECK(EnsurePgSchema(s) == 1);  // accepted, not changed: the lease holder upgrades
    CHECK(Value(s, "SELECT version FROM lottery_schema") == "1");
    CHECK(UpgradePgSchema(s) == true);
    CHECK(UpgradePgSchema(s) == false);
    CHECK(EnsurePgSchema(s) == kPgSchemaVersion);
    CHECK(CheckPgSchema(s).has_value());
    CHECK(RowsBack(s, 1) == round1);
    CHECK(RowsBack(s, 2) == round2);
    CHECK(Value(s, "SELECT count(*) FROM bets_v1") == "110");
    CHECK(Value(s, "SELECT count(*) FROM bets_round_2") == "40");
    CHECK(VerifyPgRound(s, 1)->ok());
    Group second(a, 1, 2);
    REQUIRE(Store(s, epoch, {&second}, 2).has_value());
    CHECK(Value(s, "SELECT count(*) FROM bets_round_2") == "80");
    CHECK(RowsBack(s, 2) == a.batch_rows[0] + a.batch_rows[1]);
  }
  SUBCASE("the newest round drawn: the next one gets its own partition") {
    DowngradeToVersion1(s);
    Sql(s, "DROP INDEX bets_round");  // an index an operator dropped is no obstacle
    CHECK(UpgradePgSchema(s) == true);
    CHECK(RowsBack(s, 1) == round1);
    CHECK(Value(s, "SELECT count(*) FROM bets_v1") == "110");
    REQUIRE(OpenNextPgRound(s, epoch, 1, kWinning) == 2u);
    Group first(b, 0, 1);
    REQUIRE(Store(s, epoch, {&first}, 2).has_value());
    CHECK(Value(s, "SELECT count(*) FROM bets_round_2") == "30");
    CHECK(Value(s, "SELECT count(*) FROM bets_v1") == "110");
  }
}

TEST_CASE("two servers creating the schema at once: one creates it, neither fails") {
  PgSession setup = Fresh();
  DropSchema(setup);
  std::vector<std::thread> threads;
  std::atomic<int> ok = 0;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&ok] {
      auto s = PgSession::Connect(std::getenv("LOTTERY_TEST_PG_DSN"), "pg_store_test", kTimeout);
      if (s && EnsurePgSchema(*s)) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(ok == 4);
  CHECK(Value(setup, "SELECT count(*) FROM lottery_schema") == "1");
  CHECK(Value(setup, "SELECT count(*) FROM lottery_lease") == "1");
}

TEST_CASE("the lease: one session at a time, free once its holder is gone") {
  PgSession setup = Fresh();
  std::optional<PgSession> first = Connect();
  PgSession second = Connect();
  CHECK(TryAcquirePgLease(*first) == true);
  CHECK(TryAcquirePgLease(second) == false);
  first.reset();  // PQfinish: the server ends the session a moment later
  bool got = false;
  for (int i = 0; i < 100 && !got; ++i) {
    got = TryAcquirePgLease(second).value_or(false);
    if (!got) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(got);
  auto e1 = BumpPgEpoch(second, "host-a 12");
  auto e2 = BumpPgEpoch(second, "host-b 34");
  REQUIRE((e1 && e2));
  CHECK(*e2 == *e1 + 1);
  CHECK(Value(second, "SELECT holder FROM lottery_lease") == "host-b 34");
}

TEST_CASE("a bumped epoch fences the old holder: it stores nothing") {
  std::uint64_t old_epoch = 0;
  PgSession s = Round1(old_epoch);
  PgSession other = Connect();
  const std::uint64_t new_epoch = Epoch(other);
  Feed feed(1, {3});
  Group g(feed, 0, 1);
  auto fenced = Store(s, old_epoch, {&g});
  REQUIRE_FALSE(fenced.has_value());
  CHECK(fenced.error().kind == ErrorKind::kBusy);
  CHECK(fenced.error().message.find("fenced") != std::string::npos);
  CHECK(Count(s) == 0);
  CHECK(Value(s, "SELECT count(*) FROM agency_progress") == "0");
  CHECK_FALSE(RecordPgFinished(s, old_epoch, 1, 1).has_value());
  CHECK_FALSE(ClosePgBetting(s, old_epoch, 1).has_value());
  CHECK(Store(s, new_epoch, {&g}).has_value());
  CHECK(Count(s) == 3);
}

TEST_CASE("batches are stored exactly once, progress in the same transaction") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed feed(4, {2, 3, 4});
  Group first_two(feed, 0, 2);
  auto stored = Store(s, epoch, {&first_two});
  REQUIRE(stored.has_value());
  CHECK(stored->at(0).skipped == 0);
  CHECK(stored->at(0).progress.last_seq == 2);
  CHECK(stored->at(0).progress.bets_stored == 5);
  CHECK(stored->at(0).progress.stored_digest == feed.batches[0].digest + feed.batches[1].digest);
  // Re-sent whole: skipped; then with batch 3 after the stored prefix.
  auto again = Store(s, epoch, {&first_two});
  REQUIRE(again.has_value());
  CHECK(again->at(0).skipped == 2);
  CHECK(Count(s) == 5);
  Group all(feed, 0, 3);
  auto rest = Store(s, epoch, {&all});
  REQUIRE(rest.has_value());
  CHECK(rest->at(0).skipped == 2);
  CHECK(rest->at(0).progress.last_seq == 3);
  CHECK(rest->at(0).progress.bets_stored == 9);
  CHECK(rest->at(0).progress.stored_digest == feed.digest);
  // A gap fails the whole call and changes nothing.
  Feed later(4, {2, 3, 4, 1, 1});
  Group gap(later, 4, 5);
  auto refused = Store(s, epoch, {&gap});
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::kInternal);
  CHECK(Count(s) == 9);
  // The rows come back byte for byte; progress and batches agree.
  std::string sent;
  for (const std::string& rows : feed.batch_rows) sent += rows;
  CHECK(RowsBack(s, 1) == sent);
  auto progress = ReadPgProgress(s, 1, 4);
  REQUIRE(progress.has_value());
  CHECK(progress->bets_stored == 9);
  CHECK(progress->stored_digest == feed.digest);
  auto batch = FindPgBatch(s, 1, 4, 2);
  REQUIRE((batch && *batch));
  CHECK((*batch)->digest == feed.batches[1].digest);
  CHECK((*batch)->first == 2);
  auto missing = FindPgBatch(s, 1, 4, 9);
  REQUIRE(missing.has_value());
  CHECK_FALSE(missing->has_value());
  CHECK(ReadPgProgress(s, 1, 5)->last_seq == 0);
}

TEST_CASE("two agencies' groups in one call") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed a(2, {5, 5}), b(1, {7});
  Group ga(a, 0, 2), gb(b, 0, 1);
  auto stored = Store(s, epoch, {&ga, &gb});
  REQUIRE(stored.has_value());
  REQUIRE(stored->size() == 2);
  CHECK(stored->at(0).progress.agency == 2);
  CHECK(stored->at(0).progress.bets_stored == 10);
  CHECK(stored->at(1).progress.agency == 1);
  CHECK(stored->at(1).progress.stored_digest == b.digest);
  CHECK(RowsBack(s, 1) == b.batch_rows[0] + a.batch_rows[0] + a.batch_rows[1]);
  CHECK(Value(s, "SELECT count(*) FROM batches") == "3");
}

TEST_CASE(
    "a pipeline: results in order; after a failure, nothing more runs and the session "
    "goes on") {
  PgSession s = Connect();
  Sql(s, "DROP TABLE IF EXISTS pipeline_probe");
  Sql(s, "CREATE TABLE pipeline_probe (n int)");
  const PgStatement good[] = {{"SELECT $1::int + 1", {"41"}}, {"SELECT 'two'", {}}};
  auto results = PgExecPipeline(s, good);
  REQUIRE_MESSAGE(results.has_value(), Why(results));
  REQUIRE(results->size() == 2);
  CHECK(PgText((*results)[0].get(), 0, 0) == "42");
  CHECK(PgText((*results)[1].get(), 0, 0) == "two");
  {
    PgTransaction tx = PgTransaction::Opened(s);
    const PgStatement failing[] = {{"BEGIN", {}},
                                   {"INSERT INTO pipeline_probe VALUES (1)", {}},
                                   {"SELECT 1 / 0", {}},
                                   {"INSERT INTO pipeline_probe VALUES (2)", {}}};
    auto failed = PgExecPipeline(s, failing);
    REQUIRE_FALSE(failed.has_value());
    CHECK(failed.error().message.find("SELECT 1 / 0") != std::string::npos);
    CHECK(failed.error().message.find("division by zero") != std::string::npos);
  }  // rolled back
  CHECK(Value(s, "SELECT count(*) FROM pipeline_probe") == "0");
  {  // A COMMIT that follows a failed statement does not commit.
    auto tx = PgTransaction::Begin(s);
    REQUIRE(tx.has_value());
    CHECK_FALSE(tx->Commit({{"INSERT INTO pipeline_probe VALUES (3)", {}},
                            {"INSERT INTO pipeline_probe VALUES ('x')", {}}})
                    .has_value());
  }  // rolled back
  {  // A COMMIT after a failure in an earlier round trip is refused too.
    auto tx = PgTransaction::Begin(s);
    REQUIRE(tx.has_value());
    REQUIRE(PgExec(s, "INSERT INTO pipeline_probe VALUES (4)").has_value());
    REQUIRE_FALSE(PgExec(s, "SELECT 1 / 0").has_value());
    auto committed = tx->Commit();
    REQUIRE_FALSE(committed.has_value());
    CHECK(committed.error().message.find("rolled back") != std::string::npos);
  }
  CHECK(Value(s, "SELECT count(*) FROM pipeline_probe") == "0");
  CHECK(Value(s, "SELECT 'usable'") == "usable");
  Sql(s, "DROP TABLE pipeline_probe");
}

// The round trips in a libpq protocol trace (PQtrace, no timestamps): each
// run of messages from the client ("F") that the server answers ("B").
// Lines that are neither continue a message (COPY data may hold newlines).
int RoundTrips(const std::string& trace) {
  int trips = 0;
  bool sending = false;
  std::istringstream lines(trace);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("F\t") && !sending) ++trips;
    if (line.starts_with("F\t")) sending = true;
    if (line.starts_with("B\t")) sending = false;
  }
  return trips;
}

TEST_CASE("a store is four round trips to the database, whatever its groups") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed a(2, {5, 5}), b(1, {7}), c(3, {1, 1, 1});
  Group ga(a, 0, 2), gb(b, 0, 1), gc(c, 0, 3);
  std::FILE* trace = std::tmpfile();
  REQUIRE(trace != nullptr);
  PQtrace(Conn(s), trace);
  PQsetTraceFlags(Conn(s), PQTRACE_SUPPRESS_TIMESTAMPS);
  auto stored = Store(s, epoch, {&ga, &gb, &gc});
  PQuntrace(Conn(s));
  REQUIRE(stored.has_value());
  std::string text(static_cast<std::size_t>(std::ftell(trace)), '\0');
  std::rewind(trace);
  REQUIRE(std::fread(text.data(), 1, text.size(), trace) == text.size());
  std::fclose(trace);
  // The opening (BEGIN, the fencing check, the round, the progress rows
  // locked), the COPY's start, its rows, the records with the COMMIT.
  CHECK_MESSAGE(RoundTrips(text) == 4, text);
  CHECK(Count(s) == 20);
  CHECK(ReadPgProgress(s, 1, 3)->last_seq == 3);
}

// The draw as a reference computes it from the feeds.
RoundResult Reference(const std::vector<const Feed*>& finished, std::uint32_t agencies,
                      std::uint32_t number = kWinning) {
  RoundResult r;
  r.round = 1, r.winning_number = number, r.drawn_at = 1764892800;
  r.took_part.assign(agencies + 1, false);
  r.winners.assign(agencies + 1, {});
  std::string lines;
  for (const Feed* f : finished) {
    r.took_part[f->agency] = true;
    r.bets += f->bets.size();
    lines += fmt::format("{},{},{}\n", f->agency, f->bets.size(), f->digest);
    for (const BetView& bet : f->bets) {
      if (bet.number == number) r.winners[f->agency].emplace_back(bet.document);
    }
  }
  unsigned int n = 0;
  EVP_Digest(lines.data(), lines.size(), r.bets_sha256.data(), &n, EVP_sha256(), nullptr);
  return r;
}

TEST_CASE("finished, close, draw, open the next round; lotteryctl's reads") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed a(1, {40, 40}), b(2, {30}), c(3, {25});
  Group ga(a, 0, 2), gb(b, 0, 1), gc(c, 0, 1);
  REQUIRE(Store(s, epoch, {&ga, &gb, &gc}).has_value());
  CHECK(RecordPgFinished(s, epoch, 1, 1) == true);
  CHECK(RecordPgFinished(s, epoch, 1, 2) == true);
  CHECK(RecordPgFinished(s, epoch, 1, 4) == true);  // stored nothing: took part with nothing
  auto early = OpenNextPgRound(s, epoch, 1, kWinning);
  REQUIRE_FALSE(early.has_value());
  CHECK(early.error().kind == ErrorKind::kBusy);
  CHECK(ClosePgBetting(s, epoch, 1) == true);
  CHECK(ClosePgBetting(s, epoch, 1) == false);
  CHECK(RecordPgFinished(s, epoch, 1, 3) == false);
  auto late = Store(s, epoch, {&gc});
  REQUIRE_FALSE(late.has_value());
  CHECK(late.error().kind == ErrorKind::kBusy);

  Feed none(4, {});
  RoundResult expected = Reference({&a, &b, &none}, 4);
  auto drawn = DrawPgRound(s, epoch, 1, 4, kWinning, expected.drawn_at);
  REQUIRE(drawn.has_value());
  CHECK(*drawn == expected);
  CHECK(drawn->winner_count() > 0);
  auto twice = DrawPgRound(s, epoch, 1, 4, 3, expected.drawn_at + 60);
  REQUIRE(twice.has_value());
  CHECK(*twice == expected);
  CHECK(ReadPgResult(s, 1) == expected);
  auto loaded = LoadPgRoundState(s, 4);
  REQUIRE(loaded.has_value());
  CHECK(loaded->state == RoundState::kDrawn);
  CHECK(loaded->result == expected);
  CHECK(loaded->agencies.size() == 4);
  CHECK(LoadPgRoundState(s, 3).error().kind == ErrorKind::kConfig);

  CHECK(OpenNextPgRound(s, epoch, 1, kWinning) == 2u);
  CHECK_FALSE(OpenNextPgRound(s, epoch, 1, kWinning).has_value());
  CHECK(Value(s, "SELECT indexed_number FROM rounds WHERE round = 2") == std::to_string(kWinning));
  auto next = LoadPgRoundState(s, 4);
  REQUIRE(next.has_value());
  CHECK(next->round == 2);
  CHECK(next->state == RoundState::kOpen);
  CHECK(next->agencies.empty());
  Group again(a, 0, 1);
  REQUIRE(Store(s, epoch, {&again}, 2).has_value());
  auto rounds = ListPgRounds(s);
  REQUIRE(rounds.has_value());
  REQUIRE(rounds->size() == 2);
  CHECK(rounds->at(0).state == RoundState::kDrawn);
  CHECK(rounds->at(0).bets == expected.bets);
  CHECK(rounds->at(0).winners == expected.winner_count());
  CHECK(rounds->at(0).drawn_at == expected.drawn_at);
  CHECK(rounds->at(1).state == RoundState::kOpen);
  CHECK(rounds->at(1).bets == 40);
  CHECK(ReadPgResult(s, 2).error().kind == ErrorKind::kConfig);

  auto verified = VerifyPgRound(s, 1);
  REQUIRE(verified.has_value());
  CHECK_MESSAGE(verified->ok(), fmt::format("{}", fmt::join(verified->differences, "; ")));
  Sql(s, "UPDATE bets SET first_name = 'Santiagx' WHERE round = 1 AND agency = 2 AND position = 1");
  auto tampered = VerifyPgRound(s, 1);
  REQUIRE(tampered.has_value());
  CHECK_FALSE(tampered->ok());
  Sql(s,
      "UPDATE bets SET first_name = 'Santiago Lionel' WHERE round = 1 AND agency = 2 AND position "
      "= 1");
  CHECK(VerifyPgRound(s, 1)->ok());
  Sql(s, fmt::format("UPDATE bets SET number = {} WHERE round = 1 AND agency = 1 AND position = 2",
                     kWinning));
  auto winner = VerifyPgRound(s, 1);
  REQUIRE(winner.has_value());
  CHECK_FALSE(winner->ok());
}

TEST_CASE("a draw closes an open round itself; only finished agencies take part") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  Feed a(1, {50}), b(2, {50});
  Group ga(a, 0, 1), gb(b, 0, 1);
  REQUIRE(Store(s, epoch, {&ga, &gb}).has_value());
  REQUIRE(RecordPgFinished(s, epoch, 1, 2) == true);
  auto drawn = DrawPgRound(s, epoch, 1, 2, kWinning, 1764892800);
  REQUIRE(drawn.has_value());
  CHECK(*drawn == Reference({&b}, 2));
  CHECK(Value(s, "SELECT state FROM rounds WHERE round = 1") == "drawn");
}

TEST_CASE("a round that indexes the winning number: the winners table, the same winners") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  CHECK(Value(s, "SELECT count(*) FROM rounds WHERE indexed_number IS NULL") == "1");
  REQUIRE(SetPgIndexedNumber(s, epoch, 1, kWinning) == true);
  Feed a(1, {40, 40}), b(2, {30});
  Group ga1(a, 0, 1), gb(b, 0, 1);
  REQUIRE(Store(s, epoch, {&ga1, &gb}).has_value());
  Group ga2(a, 1, 2);
  REQUIRE(Store(s, epoch, {&ga2}).has_value());
  // Once batches are stored the indexed number stays: the table would miss them.
  CHECK(SetPgIndexedNumber(s, epoch, 1, 3) == false);
  CHECK(SetPgIndexedNumber(s, epoch, 1, kWinning) == true);
  const RoundResult expected = Reference({&a, &b}, 2);
  CHECK(Value(s, "SELECT count(*) FROM winners WHERE round = 1") ==
        std::to_string(expected.winner_count()));
  CHECK(Value(s, fmt::format("SELECT count(*) FROM bets WHERE round = 1 AND number = {}",
                             kWinning)) == std::to_string(expected.winner_count()));
  REQUIRE(RecordPgFinishedAll(s, epoch, 1, std::vector<std::uint32_t>{1, 2}) == true);

  SUBCASE("the draw reads the table: a row taken out of it is a winner lost, which verify names") {
    Sql(s,
        "DELETE FROM winners WHERE (agency, position) IN "
        "(SELECT agency, position FROM winners ORDER BY agency, position LIMIT 1)");
    auto drawn = DrawPgRound(s, epoch, 1, 2, kWinning, expected.drawn_at);
    REQUIRE(drawn.has_value());
    CHECK(drawn->winner_count() + 1 == expected.winner_count());
    auto verified = VerifyPgRound(s, 1);
    REQUIRE(verified.has_value());
    CHECK_FALSE(verified->ok());
  }
  SUBCASE("the indexed number's draw equals the reference") {
    auto drawn = DrawPgRound(s, epoch, 1, 2, kWinning, expected.drawn_at);
    REQUIRE(drawn.has_value());
    CHECK(*drawn == expected);
    CHECK(VerifyPgRound(s, 1)->ok());
  }
  SUBCASE("another number is drawn from a scan of the round's rows") {
    auto drawn = DrawPgRound(s, epoch, 1, 2, 3, expected.drawn_at);
    REQUIRE(drawn.has_value());
    CHECK(*drawn == Reference({&a, &b}, 2, 3));
    CHECK(drawn->winner_count() > 0);
  }
}

TEST_CASE("SetPgIndexedNumber: none (random) is NULL; a closed round is not changed") {
  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  REQUIRE(SetPgIndexedNumber(s, epoch, 1, kWinning) == true);
  REQUIRE(SetPgIndexedNumber(s, epoch, 1, kRandomWinningNumber) == true);
  CHECK(Value(s, "SELECT count(*) FROM rounds WHERE round = 1 AND indexed_number IS NULL") == "1");
  REQUIRE(ClosePgBetting(s, epoch, 1) == true);
  CHECK(SetPgIndexedNumber(s, epoch, 1, kWinning) == false);
}

int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_CASE("connection failures: bad DSN, nobody listening, refused login, lost session") {
  auto bad = PgSession::Connect("this is not = a 'dsn", "t", kTimeout);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().kind == ErrorKind::kConfig);
  auto nobody =
      PgSession::Connect(fmt::format("host=127.0.0.1 port={} dbname=x", FreePort()), "t", kTimeout);
  REQUIRE_FALSE(nobody.has_value());
  CHECK(nobody.error().kind == ErrorKind::kIo);
  const std::string secret = "wrong-Secret-42";
  auto refused = PgSession::Connect(Env("LOTTERY_TEST_PG_PASSWORD_DSN") + " password=" + secret,
                                    "t", kTimeout);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().kind == ErrorKind::kConfig);
  CHECK(refused.error().message.find(secret) == std::string::npos);
  auto no_db = PgSession::Connect(Env("LOTTERY_TEST_PG_DSN") + " dbname=no_such_db", "t", kTimeout);
  REQUIRE_FALSE(no_db.has_value());
  CHECK(no_db.error().kind == ErrorKind::kConfig);

  std::uint64_t epoch = 0;
  PgSession s = Round1(epoch);
  CHECK(s.alive());
  CHECK(s.socket() >= 0);
  CHECK(s.Describe().find("127.0.0.1:") == 0);
  CHECK(Value(s, "SELECT current_setting('application_name')") == "pg_store_test");
  PgSession killer = Connect();
  Sql(killer, fmt::format("SELECT pg_terminate_backend({})", PQbackendPID(Conn(s))));
  Feed feed(1, {2});
  Group g(feed, 0, 1);
  auto lost = Store(s, epoch, {&g});
  REQUIRE_FALSE(lost.has_value());
  CHECK(lost.error().kind == ErrorKind::kIo);
  CHECK_FALSE(s.alive());
  CHECK(s.socket() == -1);
  CHECK(Count(killer) == 0);
}

}  // namespace
}  // namespace lottery
