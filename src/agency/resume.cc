#include "agency/resume.h"

#include <string>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"

namespace lottery {

StoredMatch SkipStoredBets(DatasetRows& rows, std::uint64_t bets_stored,
                           std::uint64_t stored_digest, StoredRows& seen) {
  seen = StoredRows{};
  while (seen.count < bets_stored) {
    std::string_view row;
    switch (rows.Next(row)) {
      case RowRead::kRow: seen.Add(row); break;
      case RowRead::kSkipped: break;  // not sent, so not stored either
      case RowRead::kEnd: return StoredMatch::kTooFew;
      case RowRead::kError: return StoredMatch::kReadError;
    }
  }
  return seen.digest == stored_digest ? StoredMatch::kMatch : StoredMatch::kDiffers;
}

int ResumeAfterStored(DatasetRows& rows, const Welcome& welcome, std::uint32_t id,
                      const std::string& path) {
  if (welcome.bets_stored == 0) return kExitOk;
  StoredRows seen;
  const StoredMatch match = SkipStoredBets(rows, welcome.bets_stored, welcome.stored_digest, seen);
  switch (match) {
    case StoredMatch::kMatch:
      Log(LogLevel::kInfo, "resume", Outcome::kSuccess,
          "client_id: {} | bets_stored: {} | last_seq: {}", id, welcome.bets_stored,
          welcome.last_seq);
      return kExitOk;
    case StoredMatch::kTooFew:
    case StoredMatch::kDiffers: {
      const std::string why =
          match == StoredMatch::kTooFew
              ? fmt::format("the dataset has only {} valid lines", seen.count)
              : fmt::format(
                    "the dataset's first {} valid lines do not match them (another "
                    "dataset, a changed one, or a bet sent in bet mode)",
                    welcome.bets_stored);
      Log(LogLevel::kError, "resume", Outcome::kFail,
          "client_id: {} | bets_stored: {} | file: {} | error: the server holds {} bets of agency "
          "{} this round, and {}; nothing sent",
          id, welcome.bets_stored, path, welcome.bets_stored, id, why);
      return kExitDataErr;
    }
    case StoredMatch::kReadError:
      Log(LogLevel::kError, "dataset", Outcome::kFail, "client_id: {} | file: {} | error: {}", id,
          path, rows.error().message);
      return kExitNoInput;
  }
  return kExitSoftware;
}

}  // namespace lottery
