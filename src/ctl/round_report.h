// How lotteryctl prints rounds: the history table, one round's result and a
// verification, each as text or as one JSON object. Winning documents are
// printed only by show --winners.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "storage/rounds.h"

namespace lottery {

// "2024-05-01T12:00:00Z" (UTC); "-" for 0 (not drawn).
std::string FormatDrawnAt(std::int64_t unix_seconds);

std::string RoundsTable(const std::vector<RoundSummary>& rounds);
std::string RoundsJson(const std::vector<RoundSummary>& rounds);

std::string RoundResultText(const RoundResult& result, bool winners);
std::string RoundResultJson(const RoundResult& result, bool winners);

std::string VerificationText(std::uint64_t round, const RoundVerification& v);
std::string VerificationJson(std::uint64_t round, const RoundVerification& v);

}  // namespace lottery
