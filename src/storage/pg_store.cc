// The lease, a round's state and its transitions other than the draw
// (pg_rounds.cc) and the batches (pg_batches.cc); the schema is pg_schema.cc.
#include "storage/pg_store.h"

#include <algorithm>

#include <fmt/format.h>

#include "storage/pg_sql.h"

namespace lottery {

namespace {

PgAgencyProgress ProgressOf(const PGresult* r, int row) {
  // Columns: agency, last_seq, bets_stored, stored_digest, finished.
  return PgAgencyProgress{static_cast<std::uint32_t>(PgU64(r, row, 0)), PgU64(r, row, 1),
                          PgU64(r, row, 2), PgU64(r, row, 3), PgBool(r, row, 4)};
}

// rounds.indexed_number as a parameter, for NULLIF($n::int, -1): -1 for none.
std::string IndexedNumberParam(std::uint32_t number) {
  return number == kRandomWinningNumber ? "-1" : std::to_string(number);
}

constexpr const char* kProgressColumns =
    "SELECT agency, last_seq, bets_stored, stored_digest, finished FROM agency_progress ";

// The current round's number and state, creating round 1 when none exists.
Result<std::pair<std::uint64_t, RoundState>> CurrentRound(PgSession& session) {
  auto created = PgExec(session,
                        "INSERT INTO rounds (round, state) SELECT 1, 'open' "
                        "WHERE NOT EXISTS (SELECT 1 FROM rounds) ON CONFLICT DO NOTHING");
  if (!created) return std::unexpected(created.error());
  if (std::string_view(PQcmdTuples(created->get())) == "1") {
    if (Status s = CreatePgBetsPartition(session, 1); !s) return std::unexpected(s.error());
  }
  auto row = PgExec(session, "SELECT round, state FROM rounds ORDER BY round DESC LIMIT 1");
  if (!row) return std::unexpected(row.error());
  return std::pair{PgU64(row->get(), 0, 0), ParsePgRoundState(PgText(row->get(), 0, 1))};
}

// Runs `sql` in an open round, under the fencing check; false, changing
// nothing, when the round is not open.
Result<bool> ChangeOpenRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                             const char* lock, const char* sql,
                             const std::vector<std::string>& params) {
  PgRoundRow row;
  auto tx = BeginOnRound(session, epoch, round, lock, row);
  if (!tx) return std::unexpected(tx.error());
  if (row.state != RoundState::kOpen) return false;
  auto changed = PgExec(session, sql, params);
  if (!changed) return std::unexpected(changed.error());
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return true;
}

}  // namespace

Result<bool> TryAcquirePgLease(PgSession& session) {
  auto got = PgExec(session, "SELECT pg_try_advisory_lock($1)", {std::to_string(kPgLeaseKey)});
  if (!got) return std::unexpected(got.error());
  return PgBool(got->get(), 0, 0);
}

Result<std::uint64_t> BumpPgEpoch(PgSession& session, std::string_view holder) {
  auto row = PgExec(session,
                    "UPDATE lottery_lease SET epoch = epoch + 1, holder = $1, acquired_at = now() "
                    "WHERE id = 1 RETURNING epoch",
                    {std::string(holder)});
  if (!row) return std::unexpected(row.error());
  if (PQntuples(row->get()) != 1) return Fail(ErrorKind::kConfig, "lottery_lease has no row");
  return PgU64(row->get(), 0, 0);
}

Result<PgRoundState> LoadPgRoundState(PgSession& session, std::uint32_t agencies) {
  auto tx = PgTransaction::Begin(session);
  if (!tx) return std::unexpected(tx.error());
  auto current = CurrentRound(session);
  if (!current) return std::unexpected(current.error());
  PgRoundState state{current->first, current->second, {}, std::nullopt};
  const std::string sql = std::string(kProgressColumns) + "WHERE round = $1 ORDER BY agency";
  auto rows = PgExec(session, sql.c_str(), {PgBigint(state.round)});
  if (!rows) return std::unexpected(rows.error());
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    state.agencies.push_back(ProgressOf(rows->get(), i));
    if (state.agencies.back().agency > agencies) {
      return Fail(
          ErrorKind::kConfig,
          fmt::format("round {} has progress of agency {}, above the {} agencies configured",
                      state.round, state.agencies.back().agency, agencies));
    }
  }
  if (state.state == RoundState::kDrawn) {
    auto result = ReadPgResultRow(session, state.round);
    if (!result) return std::unexpected(result.error());
    state.result = std::move(*result);
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return state;
}

Result<PgAgencyProgress> ReadPgProgress(PgSession& session, std::uint64_t round,
                                        std::uint32_t agency) {
  const std::string sql = std::string(kProgressColumns) + "WHERE round = $1 AND agency = $2";
  auto row = PgExec(session, sql.c_str(), {PgBigint(round), std::to_string(agency)});
  if (!row) return std::unexpected(row.error());
  if (PQntuples(row->get()) == 0) return PgAgencyProgress{.agency = agency};
  return ProgressOf(row->get(), 0);
}

Result<bool> RecordPgFinished(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                              std::uint32_t agency) {
  const std::uint32_t one[] = {agency};
  return RecordPgFinishedAll(session, epoch, round, one);
}

Result<bool> RecordPgFinishedAll(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                 std::span<const std::uint32_t> agencies) {
  std::vector<std::uint64_t> sorted(agencies.begin(), agencies.end());
  std::ranges::sort(sorted);  // rows locked in agency order, as stores lock them
  return ChangeOpenRound(session, epoch, round, "FOR SHARE",
                         "INSERT INTO agency_progress SELECT $1, a, 0, 0, 0, true "
                         "FROM unnest($2::int[]) AS a ORDER BY a "
                         "ON CONFLICT (round, agency) DO UPDATE SET finished = true",
                         {PgBigint(round), PgArray(sorted)});
}

Result<bool> ClosePgBetting(PgSession& session, std::uint64_t epoch, std::uint64_t round) {
  return ChangeOpenRound(session, epoch, round, "FOR UPDATE",
                         "UPDATE rounds SET state = 'closed', closed_at = now() WHERE round = $1",
                         {PgBigint(round)});
}

Result<std::uint64_t> OpenNextPgRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                      std::uint32_t indexed_number) {
  PgRoundRow row;
  auto tx = BeginOnRound(session, epoch, round, "FOR UPDATE", row);
  if (!tx) return std::unexpected(tx.error());
  if (row.state != RoundState::kDrawn) {
    return Fail(ErrorKind::kBusy,
                fmt::format("round {} is {}, not drawn", round, RoundStateName(row.state)));
  }
  auto opened = PgExec(session,
                       "INSERT INTO rounds (round, state, indexed_number) "
                       "VALUES ($1, 'open', NULLIF($2::int, -1)) "
                       "ON CONFLICT DO NOTHING",
                       {PgBigint(round + 1), IndexedNumberParam(indexed_number)});
  if (!opened) return std::unexpected(opened.error());
  if (std::string_view(PQcmdTuples(opened->get())) != "1") {
    return Fail(ErrorKind::kBusy, fmt::format("round {} is open already", round + 1));
  }
  if (Status s = CreatePgBetsPartition(session, round + 1); !s) return std::unexpected(s.error());
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return round + 1;
}

}  // namespace lottery

namespace lottery {

Result<bool> SetPgIndexedNumber(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                std::uint32_t indexed_number) {
  PgRoundRow row;
  auto tx = BeginOnRound(session, epoch, round, "FOR UPDATE", row);
  if (!tx) return std::unexpected(tx.error());
  if (row.indexed_number == indexed_number) return true;
  // Only before the round's first batch: a winners table that missed some
  // batches would lose winners.
  auto changed = PgExec(session,
                        "UPDATE rounds SET indexed_number = NULLIF($2::int, -1) "
                        "WHERE round = $1 AND state = 'open' "
                        "AND NOT EXISTS (SELECT 1 FROM batches WHERE round = $1)",
                        {PgBigint(round), IndexedNumberParam(indexed_number)});
  if (!changed) return std::unexpected(changed.error());
  const bool set = std::string_view(PQcmdTuples(changed->get())) == "1";
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return set;
}

}  // namespace lottery
