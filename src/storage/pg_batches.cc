// StorePgBatches and FindPgBatch: the agencies' batches, stored exactly once.
#include <algorithm>
#include <cstring>
#include <map>
#include <span>

#include <fmt/format.h>

#include "storage/pg_copy.h"
#include "storage/pg_sql.h"

namespace lottery {

namespace {

// COPY data goes to libpq in chunks this large: one call per row would cost
// more than the rows.
constexpr std::size_t kCopyChunk = 256 * 1024;

// Straight into the round's partition: no per-row routing.
std::string CopyBetsSql(std::uint64_t round) {
  return fmt::format(
      "COPY {} (round, agency, position, first_name, last_name, document, birthdate, number) "
      "FROM STDIN WITH (FORMAT binary)",
      PgBetsPartition(round));
}

// One COPY FROM STDIN in progress; aborted on destruction unless ended, so
// that the transaction around it can roll back.
class PgCopyIn {
 public:
  PgCopyIn(PgSession& session, std::uint64_t round) : session_(session), round_(round) {}
  PgCopyIn(const PgCopyIn&) = delete;
  PgCopyIn& operator=(const PgCopyIn&) = delete;
  ~PgCopyIn() {
    if (!started_ || ended_) return;
    PQputCopyEnd(Conn(session_), "aborted");
    while (PgResult(PQgetResult(Conn(session_)))) {}
  }

  Status Start() {
    auto begun = PgExec(session_, CopyBetsSql(round_).c_str(), {}, true);
    if (!begun) return std::unexpected(begun.error());
    started_ = true;
    buffer_.reserve(kCopyChunk + 4096);
    AppendPgCopyHeader(buffer_);
    return Ok();
  }
  bool started() const { return started_; }
  std::string& buffer() { return buffer_; }
  Status FlushIfFull() { return buffer_.size() >= kCopyChunk ? Flush() : Ok(); }

  // Sends what is buffered, ends the COPY; returns the rows it stored.
  Result<std::uint64_t> End() {
    AppendPgCopyTrailer(buffer_);
    if (Status s = Flush(); !s) return std::unexpected(s.error());
    ended_ = true;
    if (PQputCopyEnd(Conn(session_), nullptr) != 1) return Failure(nullptr);
    PgResult result(PQgetResult(Conn(session_)));
    const bool ok = result && PQresultStatus(result.get()) == PGRES_COMMAND_OK;
    const std::uint64_t rows = ok ? std::strtoull(PQcmdTuples(result.get()), nullptr, 10) : 0;
    auto error = ok ? Error{} : PgFailure(session_, result.get(), "COPY bets");
    while (PgResult(PQgetResult(Conn(session_)))) {}
    if (!ok) return std::unexpected(error);
    return rows;
  }

 private:
  Status Flush() {
    if (buffer_.empty()) return Ok();
    if (PQputCopyData(Conn(session_), buffer_.data(), static_cast<int>(buffer_.size())) != 1) {
      return Failure(nullptr);
    }
    buffer_.clear();
    return Ok();
  }
  std::unexpected<Error> Failure(const PGresult* result) {
    return std::unexpected(PgFailure(session_, result, "COPY bets"));
  }

  PgSession& session_;
  std::uint64_t round_;
  std::string buffer_;
  bool started_ = false;
  bool ended_ = false;
};

// The winners a store finds on its way (rows of the round's indexed
// number), for the winners table.
struct FoundWinners {
  std::vector<std::uint64_t> agency, position;
  std::vector<std::string> document;
};

// Appends the COPY tuples of `rows` (bets-file rows, CRLF) of `agency`,
// positions from `position` on, and notes the rows of `indexed_number`
// (kRandomWinningNumber: none) in `winners`. Returns how many rows.
std::uint64_t AppendCopyTuples(PgCopyIn& copy, std::uint64_t round, std::uint32_t agency,
                               std::uint64_t position, std::string_view rows,
                               std::uint32_t indexed_number, FoundWinners& winners,
                               Status& status) {
  std::uint64_t count = 0;
  PgBetColumns columns;
  std::string first_scratch, last_scratch;
  while (!rows.empty() && status) {
    const std::size_t end = rows.find('\n');
    const std::size_t size = end == std::string_view::npos ? rows.size() : end + 1;
    if (!SplitBetsFileRow(rows.substr(0, size), columns, first_scratch, last_scratch)) {
      status = Fail(ErrorKind::kInternal, fmt::format("agency {}: bet {} is not a bets-file row",
                                                      agency, position + count));
      break;
    }
    if (columns.number == indexed_number) {
      winners.agency.push_back(agency);
      winners.position.push_back(position + count);
      winners.document.emplace_back(columns.document);
    }
    AppendPgCopyTuple(copy.buffer(), round, agency, position + count++, columns);
    rows.remove_prefix(size);
    status = copy.FlushIfFull();
  }
  return count;
}

// What is left of a group once the batches the database holds are skipped.
struct GroupPlan {
  std::size_t skipped = 0;
  std::uint64_t position = 0;  // the first stored row's position
  std::string_view rows;       // the rows to store
  std::uint64_t bets = 0;      // their count
};

// Plans `g` against the agency's locked progress `p` and advances `p` to
// what it will be after the group.
Result<GroupPlan> PlanGroup(const PgBatchGroup& g, PgAgencyProgress& p) {
  GroupPlan plan;
  if (g.batches.empty()) return plan;
  if (p.last_seq < g.prev_seq || g.batches[0].seq != g.prev_seq + 1) {
    return Fail(ErrorKind::kInternal,
                fmt::format("agency {}: batch {} does not follow the stored batch {}", g.agency,
                            g.batches[0].seq, p.last_seq));
  }
  plan.skipped =
      static_cast<std::size_t>(std::min<std::uint64_t>(g.batches.size(), p.last_seq - g.prev_seq));
  plan.position = g.first_position;
  for (std::size_t i = 0; i < plan.skipped; ++i) plan.position += g.batches[i].count;
  if (plan.skipped == g.batches.size()) return plan;
  if (plan.position != p.bets_stored) {
    return Fail(ErrorKind::kInternal,
                fmt::format("agency {}: batch {} starts at bet {}, but {} bets are stored",
                            g.agency, g.batches[plan.skipped].seq, plan.position, p.bets_stored));
  }
  const std::size_t from = plan.skipped == 0 ? 0 : g.batches[plan.skipped - 1].rows_end;
  plan.rows = g.rows.substr(from, g.batches.back().rows_end - from);
  for (std::size_t i = plan.skipped; i < g.batches.size(); ++i) {
    p.last_seq = g.batches[i].seq;
    p.bets_stored += g.batches[i].count;
    p.stored_digest += g.batches[i].digest;
    plan.bets += g.batches[i].count;
  }
  return plan;
}

// Statements that create the missing progress rows of `agencies` and lock
// them all, in agency order (two stores lock in the same order: no
// deadlock); the second one's rows are the progress.
std::vector<PgStatement> LockProgressStatements(std::uint64_t round,
                                                const std::vector<std::uint64_t>& agencies) {
  const std::vector<std::string> params = {PgBigint(round), PgArray(agencies)};
  return {{"INSERT INTO agency_progress SELECT $1, a, 0, 0, 0, false "
           "FROM unnest($2::int[]) AS a ORDER BY a ON CONFLICT DO NOTHING",
           params},
          {"SELECT agency, last_seq, bets_stored, stored_digest, finished "
           "FROM agency_progress WHERE round = $1 AND agency = ANY($2::int[]) "
           "ORDER BY agency FOR UPDATE",
           params}};
}

std::map<std::uint32_t, PgAgencyProgress> ParseProgress(const PGresult* rows) {
  std::map<std::uint32_t, PgAgencyProgress> out;
  for (int i = 0; i < PQntuples(rows); ++i) {
    const auto agency = static_cast<std::uint32_t>(PgU64(rows, i, 0));
    out[agency] = PgAgencyProgress{agency, PgU64(rows, i, 1), PgU64(rows, i, 2), PgU64(rows, i, 3),
                                   PgBool(rows, i, 4)};
  }
  return out;
}

std::vector<std::uint64_t> AgenciesOf(std::span<const PgBatchGroup> groups) {
  std::vector<std::uint64_t> agencies;
  for (const PgBatchGroup& g : groups) agencies.push_back(g.agency);
  std::ranges::sort(agencies);
  agencies.erase(std::unique(agencies.begin(), agencies.end()), agencies.end());
  return agencies;
}

// The batches rows and the progress updates, as arrays (one statement each).
struct BatchArrays {
  std::vector<std::uint64_t> agency, seq, count, first, digest;
  std::vector<std::uint64_t> p_agency, p_seq, p_bets, p_digest;
  FoundWinners winners;
};

// A PostgreSQL text[] literal of documents (digits only: nothing to escape).
std::string DocumentArray(const std::vector<std::string>& documents) {
  std::string out = "{";
  for (const std::string& d : documents) {
    if (out.size() > 1) out += ',';
    out += '"' + d + '"';
  }
  return out + "}";
}

void AddBatches(BatchArrays& a, const PgBatchGroup& g, const GroupPlan& plan) {
  std::uint64_t first = plan.position;
  for (std::size_t i = plan.skipped; i < g.batches.size(); ++i) {
    a.agency.push_back(g.agency);
    a.seq.push_back(g.batches[i].seq);
    a.count.push_back(g.batches[i].count);
    a.first.push_back(first);
    a.digest.push_back(g.batches[i].digest);
    first += g.batches[i].count;
  }
}

// The statements that record the batches, the progress and the winners
// found, which the COMMIT follows in the same round trip.
std::vector<PgStatement> BatchesAndProgressStatements(std::uint64_t round, const BatchArrays& a) {
  const std::string r = PgBigint(round);
  std::vector<PgStatement> out = {
      {"INSERT INTO batches (round, agency, seq, count, first_position, digest) "
       "SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::int[], $5::bigint[], "
       "$6::bigint[])",
       {r, PgArray(a.agency), PgArray(a.seq), PgArray(a.count), PgArray(a.first),
        PgArray(a.digest)}},
      {"UPDATE agency_progress p SET last_seq = v.s, bets_stored = v.b, "
       "stored_digest = v.d FROM unnest($2::int[], $3::bigint[], $4::bigint[], "
       "$5::bigint[]) AS v(a, s, b, d) WHERE p.round = $1 AND p.agency = v.a",
       {r, PgArray(a.p_agency), PgArray(a.p_seq), PgArray(a.p_bets), PgArray(a.p_digest)}}};
  if (a.winners.agency.empty()) return out;
  out.push_back(
      {"INSERT INTO winners (round, agency, position, document) "
       "SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::text[])",
       {r, PgArray(a.winners.agency), PgArray(a.winners.position),
        DocumentArray(a.winners.document)}});
  return out;
}

// Plans and COPYs every group's new rows against the locked `progress`;
// fills `arrays` and `out`.
Status CopyGroups(PgSession& session, std::uint64_t round, std::uint32_t indexed_number,
                  std::span<const PgBatchGroup> groups,
                  std::map<std::uint32_t, PgAgencyProgress>& progress, BatchArrays& arrays,
                  std::vector<PgGroupOutcome>& out) {
  PgCopyIn copy(session, round);
  Status status = Ok();
  std::uint64_t expected = 0;
  for (const PgBatchGroup& g : groups) {
    PgAgencyProgress& p = progress[g.agency];
    auto plan = PlanGroup(g, p);
    if (!plan) return std::unexpected(plan.error());
    out.push_back(PgGroupOutcome{plan->skipped, p});
    if (plan->bets == 0) continue;
    if (!copy.started() && !(status = copy.Start())) return status;
    const std::uint64_t rows = AppendCopyTuples(copy, round, g.agency, plan->position, plan->rows,
                                                indexed_number, arrays.winners, status);
    if (!status) return status;
    if (rows != plan->bets) {
      return Fail(ErrorKind::kInternal,
                  fmt::format("agency {}: {} rows for {} bets", g.agency, rows, plan->bets));
    }
    expected += rows;
    AddBatches(arrays, g, *plan);
  }
  for (const auto& [agency, p] : progress) {
    arrays.p_agency.push_back(agency);
    arrays.p_seq.push_back(p.last_seq);
    arrays.p_bets.push_back(p.bets_stored);
    arrays.p_digest.push_back(p.stored_digest);
  }
  if (!copy.started()) return Ok();
  auto copied = copy.End();
  if (!copied) return std::unexpected(copied.error());
  if (*copied != expected) {
    return Fail(ErrorKind::kInternal, fmt::format("COPY stored {} rows of {}", *copied, expected));
  }
  return Ok();
}

}  // namespace

Result<std::vector<PgGroupOutcome>> StorePgBatches(PgSession& session, std::uint64_t epoch,
                                                   std::uint64_t round,
                                                   std::span<const PgBatchGroup> groups) {
  // Four round trips whatever the groups: the opening with the progress
  // rows locked, the COPY's start and its rows, the records with the COMMIT.
  PgRoundRow row;
  std::vector<PgResult> locked;
  auto tx = BeginOnRound(session, epoch, round, "FOR SHARE", row,
                         LockProgressStatements(round, AgenciesOf(groups)), &locked);
  if (!tx) return std::unexpected(tx.error());
  if (row.state != RoundState::kOpen) {
    return Fail(ErrorKind::kBusy,
                fmt::format("round closed: round {} is {}", round, RoundStateName(row.state)));
  }
  auto progress = ParseProgress(locked[1].get());
  BatchArrays arrays;
  std::vector<PgGroupOutcome> out;
  if (Status s = CopyGroups(session, round, row.indexed_number, groups, progress, arrays, out);
      !s) {
    return std::unexpected(s.error());
  }
  if (Status s = tx->Commit(BatchesAndProgressStatements(round, arrays)); !s) {
    return std::unexpected(s.error());
  }
  return out;
}

Result<std::optional<BatchDigest>> FindPgBatch(PgSession& session, std::uint64_t round,
                                               std::uint32_t agency, std::uint64_t seq) {
  auto row = PgExec(session,
                    "SELECT digest, first_position FROM batches "
                    "WHERE round = $1 AND agency = $2 AND seq = $3",
                    {PgBigint(round), std::to_string(agency), PgBigint(seq)});
  if (!row) return std::unexpected(row.error());
  if (PQntuples(row->get()) == 0) return std::optional<BatchDigest>();
  return std::optional<BatchDigest>(
      BatchDigest{seq, PgU64(row->get(), 0, 0), PgU64(row->get(), 0, 1)});
}

}  // namespace lottery
