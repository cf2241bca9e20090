// The PostgreSQL backend's database operations (storage.backend =
// "postgresql"; schema and its version: docs/STORAGE.md, "PostgreSQL").
// Contract: every function runs on one PgSession, synchronously, each in its
// own transaction, and is all or nothing. Operations that change a round
// take the server's fencing epoch: they commit only while the lease row
// still holds that epoch (read FOR SHARE, so a takeover that bumps it waits
// for them and every later one fails), and fail with kBusy "fenced"
// otherwise. Errors are values: kConfig for a bad DSN, a refused login or a
// schema of another version; kIo for a database that is down or a lost
// session; kBusy for fenced, or a round that is not in the state asked for.
//
// The server's processes own the sessions (storage/pg_committer.h); this
// module only speaks SQL.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/bet_store.h"
#include "storage/rounds.h"

namespace lottery {

// One libpq session, owned (PQfinish on destruction).
class PgSession {
 public:
  // Connects with `dsn` (a libpq connection string or URI, multi-host with
  // target_session_attrs supported; the password from libpq's own sources),
  // setting application_name. kConfig: the DSN does not parse or the server
  // refused the login; kIo: no server answered within `timeout`.
  static Result<PgSession> Connect(const std::string& dsn, std::string_view application_name,
                                   std::chrono::seconds timeout);
  PgSession(PgSession&&) noexcept;
  PgSession& operator=(PgSession&&) noexcept;
  ~PgSession();

  // The session's socket (for poll()); -1 once lost.
  int socket() const;
  // Whether the session is still usable.
  bool alive() const;
  // "host:port/dbname" of the server it reached: never the password.
  std::string Describe() const;
  // `dsn` (a connection string or URI) as key='value' pairs without its
  // password, for a client that takes the password from libpq's own
  // sources (a passfile, PGPASSWORD); "" when it does not parse.
  static std::string WithoutPassword(const std::string& dsn);

  // The libpq connection (PGconn*), for this module's implementation.
  void* raw() const { return conn_; }

 private:
  explicit PgSession(void* conn) : conn_(conn) {}
  void* conn_ = nullptr;
};

// The schema's version this release reads and writes (docs/STORAGE.md).
inline constexpr int kPgSchemaVersion = 2;

// Creates the schema when the database has none (one transaction, under a
// transaction-level advisory lock so two servers starting at once do not
// race). Returns the version the database held (0: none, created now);
// kConfig unless that is this release's version or version 1, which
// UpgradePgSchema upgrades.
Result<int> EnsurePgSchema(PgSession& session);
// Upgrades version 1 to this version in one transaction, under the same
// lock (docs/STORAGE.md, "Version"); returns whether it did. Only the
// lease holder calls it, so no server of the old release stores meanwhile.
Result<bool> UpgradePgSchema(PgSession& session);
// Read-only (lotteryctl): kConfig when the database has no lottery schema
// or another version of it.
Status CheckPgSchema(PgSession& session);

// The lease: a session-level advisory lock that the active server holds
// while it lives. Returns whether this session got it (false: another
// session holds it).
Result<bool> TryAcquirePgLease(PgSession& session);
// After the lease is held: bumps the fencing epoch (the lease row) and
// records `holder` (host and pid); returns the new epoch.
Result<std::uint64_t> BumpPgEpoch(PgSession& session, std::string_view holder);

// One agency's progress in a round, as WELCOME reports it.
struct PgAgencyProgress {
  std::uint32_t agency = 0;
  std::uint64_t last_seq = 0;
  std::uint64_t bets_stored = 0;
  std::uint64_t stored_digest = 0;  // sum of RowDigests (wire/row_digest.h), mod 2^64
  bool finished = false;
};

// What a starting (or taking over) server recovers.
struct PgRoundState {
  std::uint64_t round = 0;
  RoundState state = RoundState::kOpen;    // kOpen, kClosed or kDrawn
  std::vector<PgAgencyProgress> agencies;  // only agencies with a progress row
  std::optional<RoundResult> result;       // set when drawn
};

// The current round (the highest number), creating round 1 when there is
// none. kConfig when progress names an agency above `agencies`.
Result<PgRoundState> LoadPgRoundState(PgSession& session, std::uint32_t agencies);

// One agency's progress, read fresh (a reconnecting agency's WELCOME).
Result<PgAgencyProgress> ReadPgProgress(PgSession& session, std::uint64_t round,
                                        std::uint32_t agency);

// Consecutive batches of one agency, as BetStore::AppendBatches takes them:
// `rows` are bets-file rows (storage/bets_file_row.h, the agency column
// first, CRLF), batches[i].rows_end delimits batch i, batches[0].seq ==
// prev_seq + 1, and the first row is the agency's bet number
// `first_position` (0-based).
struct PgBatchGroup {
  std::uint32_t agency = 0;
  std::uint64_t prev_seq = 0;
  std::uint64_t first_position = 0;
  std::string_view rows;
  std::span<const BatchExtent> batches;
};

// What the database holds for a group after StorePgBatches: its first
// `skipped` batches were there already (stored by a worker that died before
// its reply) and not written again; `progress` is the agency's row after it.
struct PgGroupOutcome {
  std::size_t skipped = 0;
  PgAgencyProgress progress;
};

// Stores several agencies' groups in one transaction (group commit), COPYing
// their rows into bets and one row per batch into batches, and advancing
// each agency's progress in the same transaction. A group whose agency's
// last_seq in the database is already past prev_seq skips the batches the
// database has (all of them, or a prefix); a group that does not follow
// what is stored (a gap) fails the whole call with kInternal. kBusy when the
// epoch moved ("fenced") or the round is not open ("round closed").
Result<std::vector<PgGroupOutcome>> StorePgBatches(PgSession& session, std::uint64_t epoch,
                                                   std::uint64_t round,
                                                   std::span<const PgBatchGroup> groups);

// The digest of stored batch `seq` (BatchDigest's fields), for a re-sent
// batch; nullopt when it is not stored.
Result<std::optional<BatchDigest>> FindPgBatch(PgSession& session, std::uint64_t round,
                                               std::uint32_t agency, std::uint64_t seq);

// FINISHED of `agency`: sets its finished flag (creating its progress row if
// it stored nothing). Returns false, recording nothing, when the round is
// not open.
Result<bool> RecordPgFinished(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                              std::uint32_t agency);
// The same for several agencies in one transaction (the committer gathers
// the FINISHED that arrive together): all of them, or none when the round
// is not open.
Result<bool> RecordPgFinishedAll(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                 std::span<const std::uint32_t> agencies);

// Betting closed (draw.deadline, lotteryctl close): an open round becomes
// closed. Returns false when it was closed already.
Result<bool> ClosePgBetting(PgSession& session, std::uint64_t epoch, std::uint64_t round);

// The draw of `round`, in one transaction: the round is closed first (FOR
// UPDATE: no batch commits after it), the winners of the agencies that
// finished are read from the winners table when the round indexes
// `winning_number` (rounds.indexed_number), else from the round's rows, in
// (agency, position) order, their bets counted; the result (RoundResult;
// bets_file_size = 0 and bets_sha256 = SHA-256 of the lines
// "agency,bets_stored,stored_digest\n" of the agencies that took part, in
// agency order: docs/STORAGE.md) is stored and the round marked drawn. A
// round drawn already returns its stored result unchanged.
Result<RoundResult> DrawPgRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                std::uint32_t agencies, std::uint32_t winning_number,
                                std::int64_t drawn_at);

// lotteryctl open: `round` must be drawn (kBusy saying its state otherwise);
// inserts round + 1, open, whose batches index the bets of
// `indexed_number` in the winners table (kRandomWinningNumber: none).
// Returns the new number.
Result<std::uint64_t> OpenNextPgRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                      std::uint32_t indexed_number);

// A starting server's draw.winning_number for an open round that holds no
// batch yet (round 1 is created without one): its later batches index the
// bets of `indexed_number`. Returns whether the round indexes that number
// now (false: batches are stored already under another, and the draw of
// another number scans the round's rows).
Result<bool> SetPgIndexedNumber(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                std::uint32_t indexed_number);

// lotteryctl rounds / show / verify.
Result<std::vector<RoundSummary>> ListPgRounds(PgSession& session);
Result<RoundResult> ReadPgResult(PgSession& session, std::uint64_t round);
// Recomputes round `number`'s winners and per-agency digests from its rows
// and compares them with its stored result.
Result<RoundVerification> VerifyPgRound(PgSession& session, std::uint64_t number);

}  // namespace lottery
