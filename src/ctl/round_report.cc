#include "ctl/round_report.h"

#include <ctime>

#include <fmt/format.h>

#include "ctl/json.h"

namespace lottery {
namespace {

std::string Hex(const std::array<std::uint8_t, 32>& bytes) {
  std::string out;
  for (std::uint8_t b : bytes) out += fmt::format("{:02x}", b);
  return out;
}

std::string SummaryJson(const RoundSummary& r) {
  return JsonObject()
      .Number("round", r.number)
      .String("state", RoundStateName(r.state))
      .Number("bets", r.bets)
      .Number("winners", r.winners)
      .Number("drawn_at", r.drawn_at)
      .str();
}

}  // namespace

std::string FormatDrawnAt(std::int64_t unix_seconds) {
  if (unix_seconds == 0) return "-";
  const std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  if (::gmtime_r(&t, &tm) == nullptr) return std::to_string(unix_seconds);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string RoundsTable(const std::vector<RoundSummary>& rounds) {
  std::string out = fmt::format("{:>6}  {:<8}  {:>10}  {:>8}  {}\n", "round", "state", "bets",
                                "winners", "drawn_at");
  for (const RoundSummary& r : rounds) {
    out += fmt::format("{:>6}  {:<8}  {:>10}  {:>8}  {}\n", r.number, RoundStateName(r.state),
                       r.bets, r.winners, FormatDrawnAt(r.drawn_at));
  }
  return out;
}

std::string RoundsJson(const std::vector<RoundSummary>& rounds) {
  std::vector<std::string> items;
  for (const RoundSummary& r : rounds) items.push_back(SummaryJson(r));
  return JsonObject().Bool("ok", true).Raw("rounds", JsonArray(items)).str() + "\n";
}

std::string RoundResultText(const RoundResult& r, bool winners) {
  std::string out = fmt::format(
      "round: {}\nwinning_number: {}\nbets: {}\nwinners: {}\ndrawn_at: {}\nbets_file_size: {}\n"
      "bets_sha256: {}\n",
      r.round, r.winning_number, r.bets, r.winner_count(), FormatDrawnAt(r.drawn_at),
      r.bets_file_size, Hex(r.bets_sha256));
  for (std::uint32_t a = 1; a <= r.agencies(); ++a) {
    const bool took_part = a < r.took_part.size() && r.took_part[a];
    out += fmt::format("agency {}: {}, {} winners\n", a, took_part ? "took part" : "did not finish",
                       r.winners[a].size());
    if (!winners) continue;
    for (const std::string& document : r.winners[a]) out += fmt::format("  {}\n", document);
  }
  return out;
}

std::string RoundResultJson(const RoundResult& r, bool winners) {
  std::vector<std::string> agencies;
  for (std::uint32_t a = 1; a <= r.agencies(); ++a) {
    JsonObject agency;
    agency.Number("agency", a)
        .Bool("took_part", a < r.took_part.size() && r.took_part[a])
        .Number("winners", r.winners[a].size());
    if (winners) {
      std::vector<std::string> documents;
      for (const std::string& d : r.winners[a]) documents.push_back(JsonString(d));
      agency.Raw("documents", JsonArray(documents));
    }
    agencies.push_back(agency.str());
  }
  return JsonObject()
             .Bool("ok", true)
             .Number("round", r.round)
             .Number("winning_number", r.winning_number)
             .Number("bets", r.bets)
             .Number("winners", r.winner_count())
             .Number("drawn_at", r.drawn_at)
             .Number("bets_file_size", r.bets_file_size)
             .String("bets_sha256", Hex(r.bets_sha256))
             .Raw("agencies", JsonArray(agencies))
             .str() +
         "\n";
}

std::string VerificationText(std::uint64_t round, const RoundVerification& v) {
  if (v.ok()) return fmt::format("round {}: verified, the archive matches its record\n", round);
  std::string out;
  for (const std::string& d : v.differences) out += fmt::format("round {}: {}\n", round, d);
  return out;
}

std::string VerificationJson(std::uint64_t round, const RoundVerification& v) {
  std::vector<std::string> differences;
  for (const std::string& d : v.differences) differences.push_back(JsonString(d));
  return JsonObject()
             .Bool("ok", v.ok())
             .Number("round", round)
             .Raw("differences", JsonArray(differences))
             .str() +
         "\n";
}

}  // namespace lottery
