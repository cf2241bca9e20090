// The draw and what lotteryctl reads: DrawPgRound, ListPgRounds,
// ReadPgResult, VerifyPgRound.
#include <openssl/evp.h>

#include <fmt/format.h>

#include "storage/pg_sql.h"
#include "wire/bet_row.h"
#include "wire/row_digest.h"

namespace lottery {

namespace {

// An agency that took part in a draw, as its progress row says.
struct Participant {
  std::uint32_t agency = 0;
  std::uint64_t bets = 0;
  std::uint64_t digest = 0;
};

// SHA-256 of the lines "agency,bets_stored,stored_digest\n" in agency order:
// the PostgreSQL backend's bets_sha256 (docs/STORAGE.md, "PostgreSQL").
std::array<std::uint8_t, 32> ParticipationSha(const std::vector<Participant>& parts) {
  std::string lines;
  for (const Participant& p : parts) lines += fmt::format("{},{},{}\n", p.agency, p.bets, p.digest);
  std::array<std::uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_Digest(lines.data(), lines.size(), digest.data(), &length, EVP_sha256(), nullptr);
  return digest;
}

Result<std::vector<Participant>> ReadParticipants(PgSession& session, std::uint64_t round,
                                                  std::uint32_t agencies) {
  auto rows = PgExec(session,
                     "SELECT agency, bets_stored, stored_digest FROM agency_progress "
                     "WHERE round = $1 AND finished ORDER BY agency",
                     {PgBigint(round)});
  if (!rows) return std::unexpected(rows.error());
  std::vector<Participant> out;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    const PGresult* r = rows->get();
    out.push_back({static_cast<std::uint32_t>(PgU64(r, i, 0)), PgU64(r, i, 1), PgU64(r, i, 2)});
    if (out.back().agency > agencies) {
      return Fail(ErrorKind::kConfig, fmt::format("round {}: agency {} finished, above the {} "
                                                  "agencies configured",
                                                  round, out.back().agency, agencies));
    }
  }
  return out;
}

// The winners of the agencies that took part, in (agency, position) order:
// from the winners table when every batch of the round indexed the
// winning number, else from a scan of the round's rows.
Status ReadWinners(PgSession& session, std::uint32_t indexed_number, RoundResult& r) {
  const bool indexed = indexed_number == r.winning_number;
  auto rows = indexed ? PgExec(session,
                               "SELECT agency, document FROM winners WHERE round = $1 "
                               "ORDER BY agency, position",
                               {PgBigint(r.round)})
                      : PgExec(session,
                               "SELECT agency, document FROM bets WHERE round = $1 AND number = $2 "
                               "ORDER BY agency, position",
                               {PgBigint(r.round), std::to_string(r.winning_number)});
  if (!rows) return std::unexpected(rows.error());
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    const auto agency = PgU64(rows->get(), i, 0);
    if (agency < r.took_part.size() && r.took_part[agency]) {
      r.winners[agency].emplace_back(PgText(rows->get(), i, 1));
    }
  }
  return Ok();
}

std::string ByteaHex(const std::string& bytes) {
  std::string out = "\\x";
  for (unsigned char c : bytes) out += fmt::format("{:02x}", c);
  return out;
}

Status StoreResult(PgSession& session, const RoundResult& r) {
  std::string encoded;
  EncodeRoundResult(encoded, r);
  const std::string round = PgBigint(r.round), at = std::to_string(r.drawn_at);
  auto stored =
      PgExec(session, "INSERT INTO results VALUES ($1, $2, $3, to_timestamp($4), $5::bytea)",
             {round, std::to_string(r.winning_number), PgBigint(r.bets), at, ByteaHex(encoded)});
  if (!stored) return std::unexpected(stored.error());
  auto drawn = PgExec(session,
                      "UPDATE rounds SET state = 'drawn', drawn_at = to_timestamp($2), "
                      "closed_at = coalesce(closed_at, now()) WHERE round = $1",
                      {round, at});
  if (!drawn) return std::unexpected(drawn.error());
  return Ok();
}

// The draw itself, inside DrawPgRound's transaction, the round locked.
Result<RoundResult> Draw(PgSession& session, std::uint64_t round, std::uint32_t indexed_number,
                         std::uint32_t agencies, std::uint32_t winning_number,
                         std::int64_t drawn_at) {
  auto parts = ReadParticipants(session, round, agencies);
  if (!parts) return std::unexpected(parts.error());
  RoundResult r;
  r.round = round, r.winning_number = winning_number, r.drawn_at = drawn_at;
  r.took_part.assign(agencies + 1, false);
  r.winners.assign(agencies + 1, {});
  // The bets counted are the progress rows' bets_stored, which every batch
  // advances in its own transaction; VerifyPgRound recounts the rows.
  for (const Participant& p : *parts) r.took_part[p.agency] = true, r.bets += p.bets;
  r.bets_sha256 = ParticipationSha(*parts);
  if (Status s = ReadWinners(session, indexed_number, r); !s) return std::unexpected(s.error());
  if (Status s = StoreResult(session, r); !s) return std::unexpected(s.error());
  return r;
}

// What the rows of a round recount, per agency (index 1..N).
struct Recount {
  std::vector<Participant> agencies;
  std::vector<std::vector<std::string>> winners;
  std::vector<std::string> gaps;
};

Result<Recount> RecountRows(PgSession& session, std::uint64_t round, std::uint32_t agencies,
                            std::uint32_t winning_number) {
  Recount c;
  c.agencies.resize(agencies + 1);
  c.winners.resize(agencies + 1);
  Status s = ForEachPgBet(session, round, [&](const PgBetRow& bet) {
    if (bet.agency == 0 || bet.agency > agencies) {
      if (c.gaps.size() < 10)
        c.gaps.push_back(fmt::format("a bet of unknown agency {}", bet.agency));
      return;
    }
    Participant& p = c.agencies[bet.agency];
    if (bet.position != p.bets && c.gaps.size() < 10) {
      c.gaps.push_back(
          fmt::format("agency {}: bet {} is at position {}", bet.agency, p.bets, bet.position));
    }
    p.agency = bet.agency;
    p.digest += RowDigest(bet.bet_row, p.bets++);
    if (bet.number == winning_number) c.winners[bet.agency].emplace_back(bet.document);
  });
  if (!s) return std::unexpected(s.error());
  return c;
}

}  // namespace

Result<std::optional<RoundResult>> ReadPgResultRow(PgSession& session, std::uint64_t round) {
  auto row = PgExec(session, "SELECT result FROM results WHERE round = $1", {PgBigint(round)});
  if (!row) return std::unexpected(row.error());
  if (PQntuples(row->get()) == 0) return std::optional<RoundResult>();
  std::size_t size = 0;
  std::unique_ptr<unsigned char, decltype(&PQfreemem)> bytes(
      PQunescapeBytea(reinterpret_cast<const unsigned char*>(PQgetvalue(row->get(), 0, 0)), &size),
      PQfreemem);
  if (!bytes) return Fail(ErrorKind::kIo, "PostgreSQL: out of memory");
  auto decoded = DecodeRoundResult(std::string_view(reinterpret_cast<char*>(bytes.get()), size));
  if (!decoded) return std::unexpected(decoded.error());
  return std::optional<RoundResult>(std::move(*decoded));
}

Result<RoundResult> DrawPgRound(PgSession& session, std::uint64_t epoch, std::uint64_t round,
                                std::uint32_t agencies, std::uint32_t winning_number,
                                std::int64_t drawn_at) {
  // FOR UPDATE: a batch's transaction holds the round FOR SHARE, so none
  // commits between this lock and the draw's commit.
  PgRoundRow row;
  auto tx = BeginOnRound(session, epoch, round, "FOR UPDATE", row);
  if (!tx) return std::unexpected(tx.error());
  Result<RoundResult> result = Fail(ErrorKind::kInternal, "not drawn");
  if (row.state == RoundState::kDrawn) {
    auto stored = ReadPgResultRow(session, round);
    if (!stored) return std::unexpected(stored.error());
    if (!*stored) {
      return Fail(ErrorKind::kCorruptData,
                  fmt::format("round {} is drawn without a result", round));
    }
    result = std::move(**stored);
  } else {
    result = Draw(session, round, row.indexed_number, agencies, winning_number, drawn_at);
    if (!result) return result;
  }
  if (Status s = tx->Commit(); !s) return std::unexpected(s.error());
  return result;
}

Result<std::vector<RoundSummary>> ListPgRounds(PgSession& session) {
  auto rows = PgExec(session,
                     "SELECT r.round, r.state, (SELECT coalesce(sum(bets_stored), 0) FROM "
                     "agency_progress p WHERE p.round = r.round) FROM rounds r ORDER BY r.round");
  if (!rows) return std::unexpected(rows.error());
  std::vector<RoundSummary> out;
  for (int i = 0; i < PQntuples(rows->get()); ++i) {
    const PGresult* r = rows->get();
    RoundSummary s{PgU64(r, i, 0), ParsePgRoundState(PgText(r, i, 1)), PgU64(r, i, 2), 0, 0};
    if (s.state == RoundState::kDrawn) {
      auto result = ReadPgResult(session, s.number);
      if (!result) return std::unexpected(result.error());
      s.bets = result->bets;
      s.winners = result->winner_count();
      s.drawn_at = result->drawn_at;
    }
    out.push_back(s);
  }
  return out;
}

Result<RoundResult> ReadPgResult(PgSession& session, std::uint64_t round) {
  auto result = ReadPgResultRow(session, round);
  if (!result) return std::unexpected(result.error());
  if (!*result) return Fail(ErrorKind::kConfig, fmt::format("round {} has no result", round));
  return std::move(**result);
}

Result<RoundVerification> VerifyPgRound(PgSession& session, std::uint64_t number) {
  auto recorded = ReadPgResult(session, number);
  if (!recorded) return std::unexpected(recorded.error());
  RoundVerification v{std::move(*recorded), {}};
  const RoundResult& r = v.recorded;
  auto differ = [&v](std::string what) { v.differences.push_back(std::move(what)); };
  if (r.round != number) differ(fmt::format("the result is of round {}, not {}", r.round, number));
  auto parts = ReadParticipants(session, number, r.agencies());
  if (!parts) return std::unexpected(parts.error());
  auto recount = RecountRows(session, number, r.agencies(), r.winning_number);
  if (!recount) return std::unexpected(recount.error());
  for (std::string& gap : recount->gaps) differ(std::move(gap));
  std::vector<Participant> recounted;
  std::uint64_t bets = 0;
  for (std::uint32_t a = 1; a <= r.agencies(); ++a) {
    if (!r.took_part[a]) continue;
    recounted.push_back(Participant{a, recount->agencies[a].bets, recount->agencies[a].digest});
    bets += recount->agencies[a].bets;
    if (recount->winners[a] != r.winners[a]) {
      differ(fmt::format("agency {}: {} winners in the rows, {} in the result", a,
                         recount->winners[a].size(), r.winners[a].size()));
    }
  }
  if (parts->size() != recounted.size()) {
    differ(fmt::format("{} agencies finished, {} took part in the result", parts->size(),
                       recounted.size()));
  }
  if (bets != r.bets) differ(fmt::format("{} bets in the rows, {} in the result", bets, r.bets));
  const auto sha = ParticipationSha(recounted);
  if (sha != r.bets_sha256) {
    differ(fmt::format("SHA-256 of the rows' digests is {}; the result records {}", Sha256Hex(sha),
                       Sha256Hex(r.bets_sha256)));
  }
  return v;
}

Status ForEachPgBet(PgSession& session, std::uint64_t round,
                    const std::function<void(const PgBetRow&)>& each) {
  PGconn* conn = Conn(session);
  const std::string param = PgBigint(round);
  const char* values[] = {param.c_str()};
  if (!PQsendQueryParams(conn,
                         "SELECT agency, position, first_name, last_name, document, "
                         "to_char(birthdate, 'YYYY-MM-DD'), number FROM bets WHERE round = $1 "
                         "ORDER BY agency, position",
                         1, nullptr, values, nullptr, nullptr, 0) ||
      !PQsetSingleRowMode(conn)) {
    return std::unexpected(PgFailure(session, nullptr, "SELECT bets"));
  }
  std::optional<Error> error;
  std::string row;
  while (PgResult r{PQgetResult(conn)}) {
    const PGresult* p = r.get();
    if (PQresultStatus(p) == PGRES_TUPLES_OK) continue;
    if (PQresultStatus(p) != PGRES_SINGLE_TUPLE) {
      if (!error) error = PgFailure(session, p, "SELECT bets");
      continue;
    }
    const BetView bet{static_cast<std::uint32_t>(PgU64(p, 0, 0)),
                      PgText(p, 0, 2),
                      PgText(p, 0, 3),
                      PgText(p, 0, 4),
                      PgText(p, 0, 5),
                      static_cast<std::uint32_t>(PgU64(p, 0, 6))};
    row.clear();
    AppendBetRowText(row, bet);
    each(PgBetRow{bet.agency, PgU64(p, 0, 1), bet.number, bet.document, row});
  }
  if (error) return std::unexpected(*error);
  return Ok();
}

}  // namespace lottery
