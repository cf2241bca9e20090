#include "storage/rounds.h"

// Placeholder bodies: the rounds work fills these in.
namespace lottery {

std::string_view RoundStateName(RoundState state) {
  switch (state) {
    case RoundState::kOpen: return "open";
    case RoundState::kClosed: return "closed";
    case RoundState::kDrawn: return "drawn";
    case RoundState::kArchived: return "archived";
  }
  return "unknown";
}

RoundFiles CurrentRoundFiles(const std::string& storage_path) {
  return RoundFiles{storage_path, storage_path + ".journal", storage_path + ".result"};
}

std::string ArchiveRoot(const std::string& storage_path) {
  const auto slash = storage_path.rfind('/');
  return slash == std::string::npos ? std::string("rounds") : storage_path.substr(0, slash + 1) + "rounds";
}

RoundFiles ArchivedRoundFiles(const std::string& storage_path, std::uint64_t number) {
  const auto slash = storage_path.rfind('/');
  const std::string base = slash == std::string::npos ? storage_path : storage_path.substr(slash + 1);
  return CurrentRoundFiles(ArchiveRoot(storage_path) + "/" + std::to_string(number) + "/" + base);
}

std::uint64_t RoundResult::winner_count() const {
  std::uint64_t n = 0;
  for (const auto& w : winners) n += w.size();
  return n;
}

void EncodeRoundResult(std::string&, const RoundResult&) {}
Result<RoundResult> DecodeRoundResult(std::string_view) {
  return Fail(ErrorKind::kInternal, "round results are not implemented yet");
}
Result<RoundResult> ReadRoundResult(const std::string&) {
  return Fail(ErrorKind::kInternal, "round results are not implemented yet");
}
Result<std::vector<RoundSummary>> ListArchivedRounds(const std::string&) {
  return std::vector<RoundSummary>{};
}
Result<RoundVerification> VerifyRound(const std::string&, std::uint64_t) {
  return Fail(ErrorKind::kInternal, "verify is not implemented yet");
}
Result<std::uint64_t> OpenNextRound(const std::string&, SharedSegment&) {
  return Fail(ErrorKind::kInternal, "opening the next round is not implemented yet");
}

}  // namespace lottery
