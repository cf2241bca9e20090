// PgSession and the private helpers of pg_sql.h.
#include <algorithm>
#include <charconv>
#include <iterator>
#include <utility>

#include <fmt/format.h>

#include "storage/pg_sql.h"

namespace lottery {

namespace {

// Keepalives notice a peer that vanished (a primary powered off) within
// about a minute instead of the kernel's two hours.
// tcp_user_timeout: a database host that vanished without closing the
// connection (power, partition) fails a waiting query within 30 s, so a
// lease holder notices it lost the lease and a standby retries the next host.
constexpr const char* kKeepalives[][2] = {{"keepalives", "1"},
                                          {"keepalives_idle", "10"},
                                          {"keepalives_interval", "5"},
                                          {"keepalives_count", "3"},
                                          {"tcp_user_timeout", "30000"}};

// libpq's parse errors may quote a piece of the DSN, which can be its
// password: the quoted parts are left out.
std::string RedactQuoted(std::string_view message) {
  std::string out;
  bool quoted = false;
  for (char c : message) {
    if (c == '"') {
      out += quoted ? "\"" : "\"...";
      quoted = !quoted;
    } else if (!quoted && c != '\n') {
      out += c;
    }
  }
  return out;
}

std::string FirstLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
  return std::string(text.substr(0, text.find('\n')));
}

// A refused login is the operator's to fix (kConfig); anything else that
// stopped the connection (no server, a timeout) may pass (kIo).
bool IsLoginRefusal(PGconn* conn, std::string_view message) {
  if (PQconnectionNeedsPassword(conn)) return true;
  for (std::string_view what :
       {"password authentication failed", "no password supplied", "authentication failed",
        "does not exist", "pg_hba.conf", "permission denied"}) {
    if (message.find(what) != std::string_view::npos) return true;
  }
  return false;
}

}  // namespace

Result<PgSession> PgSession::Connect(const std::string& dsn, std::string_view application_name,
                                     std::chrono::seconds timeout) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &parse_error);
  if (options == nullptr) {
    std::string why = parse_error ? RedactQuoted(FirstLine(parse_error)) : "out of memory";
    PQfreemem(parse_error);
    return Fail(ErrorKind::kConfig, "the PostgreSQL DSN does not parse: " + why);
  }
  PQconninfoFree(options);
  const std::string seconds = std::to_string(std::max<std::int64_t>(timeout.count(), 1));
  const std::string name(application_name);
  // Keepalives first, so that the DSN may tune them; ours after it win.
  std::vector<const char*> keys, values;
  for (const auto& kv : kKeepalives) keys.push_back(kv[0]), values.push_back(kv[1]);
  for (auto [k, v] : {std::pair{"dbname", dsn.c_str()},
                      {"connect_timeout", seconds.c_str()},
                      {"application_name", name.c_str()},
                      {"client_encoding", "UTF8"}}) {
    keys.push_back(k), values.push_back(v);
  }
  keys.push_back(nullptr), values.push_back(nullptr);
  PGconn* conn = PQconnectdbParams(keys.data(), values.data(), 1);
  if (conn == nullptr) return Fail(ErrorKind::kIo, "PostgreSQL: out of memory");
  PgSession session(conn);
  if (PQstatus(conn) == CONNECTION_OK) return session;
  const std::string message = FirstLine(PQerrorMessage(conn));
  const ErrorKind kind = IsLoginRefusal(conn, message) ? ErrorKind::kConfig : ErrorKind::kIo;
  return Fail(kind, "cannot connect to PostgreSQL: " + message);
}

PgSession::PgSession(PgSession&& other) noexcept : conn_(std::exchange(other.conn_, nullptr)) {}

PgSession& PgSession::operator=(PgSession&& other) noexcept {
  if (this != &other) {
    if (conn_ != nullptr) PQfinish(static_cast<PGconn*>(conn_));
    conn_ = std::exchange(other.conn_, nullptr);
  }
  return *this;
}

PgSession::~PgSession() {
  if (conn_ != nullptr) PQfinish(static_cast<PGconn*>(conn_));
}

int PgSession::socket() const { return alive() ? PQsocket(Conn(*this)) : -1; }

bool PgSession::alive() const { return conn_ != nullptr && PQstatus(Conn(*this)) == CONNECTION_OK; }

std::string PgSession::Describe() const {
  if (conn_ == nullptr) return "(no session)";
  PGconn* conn = Conn(*this);
  return fmt::format("{}:{}/{}", PQhost(conn), PQport(conn), PQdb(conn));
}

std::string PgSession::WithoutPassword(const std::string& dsn) {
  char* parse_error = nullptr;
  PQconninfoOption* options = PQconninfoParse(dsn.c_str(), &parse_error);
  PQfreemem(parse_error);
  if (options == nullptr) return "";
  std::string out;
  for (const PQconninfoOption* o = options; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || std::string_view(o->keyword) == "password") continue;
    std::string quoted;
    for (const char* c = o->val; *c != '\0'; ++c) {
      if (*c == '\'' || *c == '\\') quoted += '\\';
      quoted += *c;
    }
    out += fmt::format("{}{}='{}'", out.empty() ? "" : " ", o->keyword, quoted);
  }
  PQconninfoFree(options);
  return out;
}

Error PgFailure(const PgSession& session, const PGresult* result, std::string_view what) {
  PGconn* conn = Conn(session);
  std::string message = FirstLine(result ? PQresultErrorMessage(result) : "");
  if (message.empty()) message = FirstLine(PQerrorMessage(conn));
  // Every failure here is kIo: a lost session (CONNECTION_BAD, SQLSTATE
  // class 08, 57P01 admin shutdown) and an unexpected SQL error alike.
  const char* state = result ? PQresultErrorField(result, PG_DIAG_SQLSTATE) : nullptr;
  const bool lost = PQstatus(conn) == CONNECTION_BAD ||
                    (state != nullptr && (std::string_view(state).starts_with("08") ||
                                          std::string_view(state).starts_with("57P")));
  return Error{ErrorKind::kIo,
               fmt::format("PostgreSQL {}: {}{}: {}", session.Describe(), what,
                           lost ? " (session lost)" : "", message),
               0};
}

namespace {

// The first words of a statement, to name it in an error.
std::string_view StatementName(std::string_view sql) { return sql.substr(0, sql.find(' ', 12)); }

// The text parameters as libpq takes them.
std::vector<const char*> ParamValues(const std::vector<std::string>& params) {
  std::vector<const char*> values;
  for (const std::string& p : params) values.push_back(p.c_str());
  return values;
}

ExecStatusType StatusOf(const PgResult& result) {
  return result ? PQresultStatus(result.get()) : PGRES_FATAL_ERROR;
}

bool Succeeded(ExecStatusType status) {
  return status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK;
}

}  // namespace

Result<PgResult> PgExec(PgSession& session, const char* sql, const std::vector<std::string>& params,
                        bool copy) {
  const std::vector<const char*> values = ParamValues(params);
  PgResult result(PQexecParams(Conn(session), sql, static_cast<int>(values.size()), nullptr,
                               values.data(), nullptr, nullptr, 0));
  const ExecStatusType status = StatusOf(result);
  if (Succeeded(status)) return result;
  if (copy && status == PGRES_COPY_IN) return result;
  return std::unexpected(PgFailure(session, result.get(), StatementName(sql)));
}

Result<PgTransaction> PgTransaction::Begin(PgSession& session) {
  if (auto begun = PgExec(session, "BEGIN"); !begun) return std::unexpected(begun.error());
  return PgTransaction(&session);
}

PgTransaction::~PgTransaction() {
  // Best effort: a lost session has rolled back already.
  if (session_ != nullptr && session_->alive()) PgResult(PQexec(Conn(*session_), "ROLLBACK"));
}

Status PgTransaction::Commit(std::vector<PgStatement> last) {
  last.push_back({"COMMIT", {}});
  auto done = PgExecPipeline(*session_, last);
  if (!done) return std::unexpected(done.error());
  // COMMIT in a transaction that had already failed succeeds as ROLLBACK.
  if (std::string_view(PQcmdStatus(done->back().get())) != "COMMIT") {
    return Fail(ErrorKind::kIo, "PostgreSQL: COMMIT: the transaction had failed; rolled back");
  }
  session_ = nullptr;
  return Ok();
}

namespace {

// Every statement queued, then the sync point that sends them.
Status SendPipeline(PgSession& session, std::span<const PgStatement> statements) {
  PGconn* conn = Conn(session);
  for (const PgStatement& st : statements) {
    const std::vector<const char*> values = ParamValues(st.params);
    if (PQsendQueryParams(conn, st.sql, static_cast<int>(values.size()), nullptr, values.data(),
                          nullptr, nullptr, 0) != 1) {
      return std::unexpected(PgFailure(session, nullptr, StatementName(st.sql)));
    }
  }
  if (PQpipelineSync(conn) != 1) return std::unexpected(PgFailure(session, nullptr, "sync"));
  return Ok();
}

// One statement's result in a pipeline, and the null that ends it.
PgResult NextPipelineResult(PGconn* conn) {
  PgResult result(PQgetResult(conn));
  if (result) {
    while (PGresult* extra = PQgetResult(conn)) PQclear(extra);
  }
  return result;
}

// Reads the results of `statements`, then the sync point's, and leaves
// pipeline mode. Every result is read even after a failure: the
// connection is usable again only once the sync point has come back.
Result<std::vector<PgResult>> ReadPipeline(PgSession& session,
                                           std::span<const PgStatement> statements) {
  PGconn* conn = Conn(session);
  std::vector<PgResult> out;
  std::optional<Error> failure;
  for (const PgStatement& st : statements) {
    PgResult result = NextPipelineResult(conn);
    if (!failure && !Succeeded(StatusOf(result))) {
      failure = PgFailure(session, result.get(), StatementName(st.sql));
    }
    out.push_back(std::move(result));
  }
  // The sync point's own result; on a lost session there is none.
  PgResult sync(PQgetResult(conn));
  if (!failure && StatusOf(sync) != PGRES_PIPELINE_SYNC) {
    failure = PgFailure(session, sync.get(), "sync");
  }
  PQexitPipelineMode(conn);
  if (failure) return std::unexpected(*failure);
  return out;
}

// The lease row read FOR SHARE (a takeover that bumps it waits for this
// transaction): kBusy "fenced" unless it holds `epoch`.
Status CheckEpoch(const PGresult* lease, std::uint64_t epoch) {
  if (PQntuples(lease) != 1) return Fail(ErrorKind::kConfig, "lottery_lease has no row");
  const std::uint64_t held = PgU64(lease, 0, 0);
  if (held == epoch) return Ok();
  return Fail(ErrorKind::kBusy,
              fmt::format("fenced: the lease's epoch is {}, this server's {}", held, epoch));
}

Result<PgRoundRow> ParseRoundRow(const PGresult* row, std::uint64_t round) {
  if (PQntuples(row) != 1) {
    return Fail(ErrorKind::kBusy, fmt::format("round {} does not exist", round));
  }
  PgRoundRow out;
  out.state = ParsePgRoundState(PgText(row, 0, 0));
  if (!PQgetisnull(row, 0, 1)) out.indexed_number = static_cast<std::uint32_t>(PgU64(row, 0, 1));
  return out;
}

}  // namespace

Result<std::vector<PgResult>> PgExecPipeline(PgSession& session,
                                             std::span<const PgStatement> statements) {
  if (PQenterPipelineMode(Conn(session)) != 1) {
    return std::unexpected(PgFailure(session, nullptr, "pipeline"));
  }
  if (Status sent = SendPipeline(session, statements); !sent) {
    PQexitPipelineMode(Conn(session));
    return std::unexpected(sent.error());
  }
  return ReadPipeline(session, statements);
}

Result<PgTransaction> BeginOnRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                   const char* lock, PgRoundRow& row, std::vector<PgStatement> more,
                                   std::vector<PgResult>* more_results) {
  const std::string round_sql =
      fmt::format("SELECT state, indexed_number FROM rounds WHERE round = $1 {}", lock);
  std::vector<PgStatement> statements = {
      {"BEGIN", {}},
      {"SELECT epoch FROM lottery_lease WHERE id = 1 FOR SHARE", {}},
      {round_sql.c_str(), {PgBigint(round)}},
  };
  std::ranges::move(more, std::back_inserter(statements));
  PgTransaction tx = PgTransaction::Opened(session);
  auto results = PgExecPipeline(session, statements);
  if (!results) return std::unexpected(results.error());
  if (Status s = CheckEpoch((*results)[1].get(), epoch); !s) return std::unexpected(s.error());
  auto locked = ParseRoundRow((*results)[2].get(), round);
  if (!locked) return std::unexpected(locked.error());
  row = *locked;
  if (more_results != nullptr) {
    more_results->clear();
    for (std::size_t i = 3; i < results->size(); ++i) {
      more_results->push_back(std::move((*results)[i]));
    }
  }
  return tx;
}

std::string_view PgText(const PGresult* result, int row, int col) {
  return std::string_view(PQgetvalue(result, row, col),
                          static_cast<std::size_t>(PQgetlength(result, row, col)));
}

std::uint64_t PgU64(const PGresult* result, int row, int col) {
  const std::string_view text = PgText(result, row, col);
  std::int64_t value = 0;
  std::from_chars(text.data(), text.data() + text.size(), value);
  return static_cast<std::uint64_t>(value);
}

bool PgBool(const PGresult* result, int row, int col) { return PgText(result, row, col) == "t"; }

std::string PgBigint(std::uint64_t value) {
  return std::to_string(static_cast<std::int64_t>(value));
}

std::string PgArray(const std::vector<std::uint64_t>& values) {
  std::string out = "{";
  for (std::uint64_t v : values) out += PgBigint(v) + ",";
  if (out.size() > 1) out.pop_back();
  return out + "}";
}

RoundState ParsePgRoundState(std::string_view text) {
  if (text == "closed") return RoundState::kClosed;
  if (text == "drawn") return RoundState::kDrawn;
  return RoundState::kOpen;
}

}  // namespace lottery
