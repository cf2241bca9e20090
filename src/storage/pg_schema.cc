// The schema: its creation, its version check, the upgrade from version 1,
// and the partitions of `bets`, one per round.
#include <fmt/format.h>

#include "storage/pg_sql.h"
#include "storage/pg_store.h"

namespace lottery {

namespace {

// docs/STORAGE.md, "PostgreSQL", describes every table; a change here is a
// new kPgSchemaVersion. bets' fixed-width columns come first, widest first,
// so that no row carries alignment padding (docs/PERFORMANCE.md).
constexpr const char* kCreateBets = R"sql(
CREATE TABLE bets (round bigint NOT NULL, position bigint NOT NULL, agency int NOT NULL,
                   birthdate date NOT NULL, number int NOT NULL, first_name text NOT NULL,
                   last_name text NOT NULL, document text NOT NULL) PARTITION BY LIST (round);
)sql";

constexpr const char* kCreateOtherTables = R"sql(
CREATE TABLE lottery_schema (version int NOT NULL);
CREATE TABLE lottery_lease (id int PRIMARY KEY CHECK (id = 1), epoch bigint NOT NULL,
                            holder text NOT NULL, acquired_at timestamptz);
INSERT INTO lottery_lease VALUES (1, 0, '', NULL);
CREATE TABLE rounds (round bigint PRIMARY KEY, state text NOT NULL
                       CHECK (state IN ('open', 'closed', 'drawn')),
                     opened_at timestamptz NOT NULL DEFAULT now(), closed_at timestamptz,
                     drawn_at timestamptz, indexed_number int);
CREATE TABLE agency_progress (round bigint NOT NULL REFERENCES rounds, agency int NOT NULL,
                              last_seq bigint NOT NULL, bets_stored bigint NOT NULL,
                              stored_digest bigint NOT NULL, finished bool NOT NULL,
                              PRIMARY KEY (round, agency));
CREATE TABLE batches (round bigint NOT NULL, agency int NOT NULL, seq bigint NOT NULL,
                      count int NOT NULL, first_position bigint NOT NULL, digest bigint NOT NULL,
                      PRIMARY KEY (round, agency, seq));
CREATE TABLE winners (round bigint NOT NULL, agency int NOT NULL, position bigint NOT NULL,
                      document text NOT NULL, PRIMARY KEY (round, agency, position));
CREATE TABLE results (round bigint PRIMARY KEY REFERENCES rounds, winning_number int NOT NULL,
                      bets bigint NOT NULL, drawn_at timestamptz NOT NULL, result bytea NOT NULL);
)sql";

// Whether the database has the lottery's schema (any version).
Result<bool> HasSchema(PgSession& session) {
  auto found = PgExec(session, "SELECT to_regclass('lottery_schema') IS NOT NULL");
  if (!found) return std::unexpected(found.error());
  return PgBool(found->get(), 0, 0);
}

// The version lottery_schema holds; 0 when it has no row.
Result<int> HeldVersion(PgSession& session) {
  auto version = PgExec(session, "SELECT version FROM lottery_schema");
  if (!version) return std::unexpected(version.error());
  if (PQntuples(version->get()) != 1) return 0;
  return static_cast<int>(PgU64(version->get(), 0, 0));
}

Status RefuseVersion(int held, std::string_view hint = "") {
  return Fail(
      ErrorKind::kConfig,
      fmt::format("the database holds schema version {}; this release reads version {}{}",
                  held == 0 ? std::string("none") : std::to_string(held), kPgSchemaVersion, hint));
}

constexpr const char* kBetsColumns =
    "round, agency, position, first_name, last_name, document, birthdate, number";

// A script of several statements (no parameters: PQexec).
Status PgScript(PgSession& session, const std::string& sql, std::string_view what) {
  PgResult result(PQexec(Conn(session), sql.c_str()));
  if (result && PQresultStatus(result.get()) == PGRES_COMMAND_OK) return Ok();
  return std::unexpected(PgFailure(session, result.get(), what));
}

Status CreateSchema(PgSession& session) {
  const std::string sql = std::string(kCreateOtherTables) + kCreateBets +
                          fmt::format("INSERT INTO lottery_schema VALUES ({});", kPgSchemaVersion);
  return PgScript(session, sql, "creating the schema");
}

// The rounds whose rows stay in version 1's table: every round but the one
// still taking bets, and any round its rows name (one scan).
Result<std::string> OldRoundList(PgSession& session, std::optional<std::uint64_t> open) {
  const std::string other = open ? fmt::format("round <> {}", PgBigint(*open)) : "true";
  const std::string sql = fmt::format(
      "SELECT round FROM rounds WHERE {0} UNION SELECT DISTINCT round FROM bets_v1 WHERE {0} "
      "ORDER BY 1",
      other);
  auto rows = PgExec(session, sql.c_str());
  if (!rows) return std::unexpected(rows.error());
  std::string list;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    list += fmt::format("{}{}", list.empty() ? "" : ", ", PgText(rows->get(), i, 0));
  }
  return list;
}

// The newest round when it is not drawn (it may still take bets): it gets
// its own partition, as every round after it will.
Result<std::optional<std::uint64_t>> UndrawnNewestRound(PgSession& session) {
  auto row = PgExec(session,
                    "SELECT round FROM rounds WHERE state <> 'drawn' "
                    "AND round = (SELECT max(round) FROM rounds)");
  if (!row) return std::unexpected(row.error());
  if (PQntuples(row->get()) == 0) return std::optional<std::uint64_t>();
  return std::optional<std::uint64_t>(PgU64(row->get(), 0, 0));
}

// The undrawn round's rows move to its partition; the other rounds' rows
// stay where they are: version 1's table becomes their partition (no copy).
Status UpgradeFromVersion1(PgSession& session) {
  const Status renamed = PgScript(session,
                                  "ALTER TABLE bets RENAME TO bets_v1;"
                                  "ALTER INDEX IF EXISTS bets_round RENAME TO bets_v1_round;",
                                  "upgrading the schema from version 1");
  if (!renamed) return renamed;
  if (Status s = PgScript(session, kCreateBets, "upgrading the schema"); !s) return s;
  auto open = UndrawnNewestRound(session);
  if (!open) return std::unexpected(open.error());
  if (*open) {
    const std::string partition = PgBetsPartition(**open), round = PgBigint(**open);
    const Status moved =
        PgScript(session,
                 fmt::format("CREATE TABLE {0} PARTITION OF bets FOR VALUES IN ({1});"
                             "INSERT INTO {0} ({2}) SELECT {2} FROM bets_v1 WHERE round = {1} "
                             "ORDER BY agency, position; DELETE FROM bets_v1 WHERE round = {1};",
                             partition, round, kBetsColumns),
                 "upgrading the schema: moving the open round's bets");
    if (!moved) return moved;
  }
  auto old = OldRoundList(session, *open);
  if (!old) return std::unexpected(old.error());
  const std::string keep =
      old->empty()
          ? "DROP TABLE bets_v1;"
          : fmt::format("ALTER TABLE bets ATTACH PARTITION bets_v1 FOR VALUES IN ({});", *old);
  return PgScript(session,
                  keep + fmt::format("UPDATE lottery_schema SET version = {};", kPgSchemaVersion),
                  "upgrading the schema from version 1");
}

// BEGIN and the schema's transaction-level advisory lock: two servers
// creating or upgrading it at once take turns.
Result<PgTransaction> BeginSchemaChange(PgSession& session) {
  auto tx = PgTransaction::Begin(session);
  if (!tx) return std::unexpected(tx.error());
  auto locked = PgExec(session, "SELECT pg_advisory_xact_lock($1)", {std::to_string(kPgSchemaKey)});
  if (!locked) return std::unexpected(locked.error());
  return tx;
}

}  // namespace

std::string PgBetsPartition(std::uint64_t round) { return fmt::format("bets_round_{}", round); }

Status CreatePgBetsPartition(PgSession& session, std::uint64_t round) {
  return PgScript(session,
                  fmt::format("CREATE TABLE {} PARTITION OF bets FOR VALUES IN ({})",
                              PgBetsPartition(round), PgBigint(round)),
                  "creating the round's bets partition");
}

Result<int> EnsurePgSchema(PgSession& session) {
  auto tx = BeginSchemaChange(session);
  if (!tx) return std::unexpected(tx.error());
  auto found = HasSchema(session);
  if (!found) return std::unexpected(found.error());
  int held = 0;
  if (!*found) {
    if (Status s = CreateSchema(session); !s) return std::unexpected(s.error());
  } else {
    auto version = HeldVersion(session);
    if (!version) return std::unexpected(version.error());
    held = *version;
    if (held != 1 && held != kPgSchemaVersion) return std::unexpected(RefuseVersion(held).error());
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return held;
}

Result<bool> UpgradePgSchema(PgSession& session) {
  auto tx = BeginSchemaChange(session);
  if (!tx) return std::unexpected(tx.error());
  auto held = HeldVersion(session);
  if (!held) return std::unexpected(held.error());
  if (*held == kPgSchemaVersion) return false;
  if (*held != 1) return std::unexpected(RefuseVersion(*held).error());
  if (Status s = UpgradeFromVersion1(session); !s) return std::unexpected(s.error());
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return true;
}

Status CheckPgSchema(PgSession& session) {
  auto found = HasSchema(session);
  if (!found) return std::unexpected(found.error());
  if (!*found) {
    return Fail(ErrorKind::kConfig, fmt::format("PostgreSQL {}: the database has no lottery schema "
                                                "(no lottery-server has used it)",
                                                session.Describe()));
  }
  auto held = HeldVersion(session);
  if (!held) return std::unexpected(held.error());
  if (*held == 1) {
    return RefuseVersion(1, " (a lottery-server of this release upgrades it when it starts)");
  }
  return *held == kPgSchemaVersion ? Ok() : RefuseVersion(*held);
}

}  // namespace lottery
