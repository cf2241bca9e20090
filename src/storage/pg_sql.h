// Private helpers of the PostgreSQL backend (pg_*.cc): owned results, one
// statement with text parameters, transactions that roll back unless
// committed, the fencing check, and libpq's failures mapped to ErrorKinds
// (pg_store.h says which). Only storage/pg_*.cc and their test include it.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/pg_store.h"
#include "wire/bet.h"

namespace lottery {

// The advisory lock keys (docs/STORAGE.md, "PostgreSQL"): the lease is the
// ASCII bytes of "lottery" as one bigint; EnsurePgSchema's transaction-level
// lock is the next key, so that it never waits for a server's lease.
inline constexpr std::int64_t kPgLeaseKey = 0x6c6f7474657279;
inline constexpr std::int64_t kPgSchemaKey = kPgLeaseKey + 1;

struct PgResultFree {
  void operator()(PGresult* result) const { PQclear(result); }
};
using PgResult = std::unique_ptr<PGresult, PgResultFree>;

inline PGconn* Conn(const PgSession& session) { return static_cast<PGconn*>(session.raw()); }

// The Error for a failed statement `what` (result may be null): kIo with
// the server's message; the session's host, never its password.
Error PgFailure(const PgSession& session, const PGresult* result, std::string_view what);

// Runs `sql` with text parameters; a result that is neither COMMAND_OK nor
// TUPLES_OK (nor COPY_IN when `copy` is set) is an Error.
Result<PgResult> PgExec(PgSession& session, const char* sql,
                        const std::vector<std::string>& params = {}, bool copy = false);

// One statement of a pipeline: SQL and its text parameters.
struct PgStatement {
  const char* sql;
  std::vector<std::string> params;
};

// Runs `statements` in order in one round trip to the server (libpq's
// pipeline mode) and returns their results, or the first failure: a
// statement after a failed one is not run. A transaction of many
// statements then waits a few round trips to the database, not one per
// statement, which counts when the database is on another host
// (docs/STORAGE.md, "Storing batches").
Result<std::vector<PgResult>> PgExecPipeline(PgSession& session,
                                             std::span<const PgStatement> statements);

// BEGIN on Begin(); ROLLBACK on destruction unless Commit() succeeded.
class PgTransaction {
 public:
  static Result<PgTransaction> Begin(PgSession& session);
  // A transaction whose BEGIN went out in a pipeline; rolled back unless
  // committed, whether that BEGIN ran or not (ROLLBACK outside a
  // transaction only warns).
  static PgTransaction Opened(PgSession& session) { return PgTransaction(&session); }
  PgTransaction(PgTransaction&& other) noexcept : session_(other.session_) {
    other.session_ = nullptr;
  }
  PgTransaction& operator=(PgTransaction&&) = delete;
  ~PgTransaction();
  // Runs `last` and then COMMIT in one round trip; the transaction is
  // committed only when all of them succeeded.
  Status Commit(std::vector<PgStatement> last = {});

 private:
  explicit PgTransaction(PgSession* session) : session_(session) {}
  PgSession* session_;
};

// A round's row, as the operations that change the round read it.
struct PgRoundRow {
  RoundState state = RoundState::kOpen;
  // The number whose bets the winners table holds for the round, every
  // batch's included (kRandomWinningNumber: none; the draw scans the rows).
  std::uint32_t indexed_number = kRandomWinningNumber;
};

// A changing operation's start, in one round trip: BEGIN, the fencing
// check (the lease row read FOR SHARE, so that a takeover that bumps it
// waits for this transaction; kBusy "fenced" unless it holds `epoch`),
// `round` locked (`lock`: "FOR SHARE" or "FOR UPDATE"), then `more`;
// sets `row` to the round's row and `more_results` (when given) to the
// results of `more`.
Result<PgTransaction> BeginOnRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                   const char* lock, PgRoundRow& row,
                                   std::vector<PgStatement> more = {},
                                   std::vector<PgResult>* more_results = nullptr);

// Field accessors for row `row`, column `col`.
std::string_view PgText(const PGresult* result, int row, int col);
std::uint64_t PgU64(const PGresult* result, int row, int col);  // two's complement for bigint
bool PgBool(const PGresult* result, int row, int col);

// uint64 as the bigint text that stores it (two's complement).
std::string PgBigint(std::uint64_t value);
// A PostgreSQL array literal of the values as bigint ("{1,-2}").
std::string PgArray(const std::vector<std::uint64_t>& values);

// The partition of `bets` that holds round `round`'s rows, by name, and its
// creation, in the transaction that inserts the round's row (pg_schema.cc).
std::string PgBetsPartition(std::uint64_t round);
Status CreatePgBetsPartition(PgSession& session, std::uint64_t round);

RoundState ParsePgRoundState(std::string_view text);
// The stored result of `round` (DecodeRoundResult of results.result);
// nullopt when it has none.
Result<std::optional<RoundResult>> ReadPgResultRow(PgSession& session, std::uint64_t round);

// One bet as the database holds it, its bet row rebuilt (wire/bet_row.h):
// the agency's bytes as they came, as docs/STORAGE.md's rows hold them.
struct PgBetRow {
  std::uint32_t agency = 0;
  std::uint64_t position = 0;
  std::uint32_t number = 0;
  std::string_view document;
  std::string_view bet_row;  // without agency column and CRLF
};

// Streams round `round`'s bets in (agency, position) order to `each`
// (single-row mode: memory stays bounded whatever the round's size).
Status ForEachPgBet(PgSession& session, std::uint64_t round,
                    const std::function<void(const PgBetRow&)>& each);

}  // namespace lottery
