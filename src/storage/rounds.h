// Rounds on disk: the current round's files beside storage.path, the
// durable result of a drawn round, and the archive (`rounds/<N>/` beside
// storage.path) that opening the next round moves a drawn round's files to.
// Formats: docs/STORAGE.md, "Rounds" and "The round result".
//
// The parent uses OpenNextRound; lotteryctl reads the archive with
// ListRounds, ReadRoundResult and VerifyRound, never writing to it.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "shm/shared_state.h"

namespace lottery {

// A round's life: open (bets accepted), closed (every agency finished,
// draw.deadline, or the operator), drawn (its result is durable), archived
// (the next round was opened; its files moved under rounds/<N>/).
enum class RoundState : std::uint8_t { kOpen = 1, kClosed = 2, kDrawn = 3, kArchived = 4 };

// "open", "closed", "drawn", "archived".
std::string_view RoundStateName(RoundState state);

// The files of one round.
struct RoundFiles {
  std::string bets;     // the bets file
  std::string journal;  // bets + ".journal"
  std::string result;   // bets + ".result", written at the draw
};

// The current round: storage.path and its siblings.
RoundFiles CurrentRoundFiles(const std::string& storage_path);
// `rounds` beside storage.path: <dirname(storage.path)>/rounds.
std::string ArchiveRoot(const std::string& storage_path);
// <ArchiveRoot>/<number>/ with the current files' base names.
RoundFiles ArchivedRoundFiles(const std::string& storage_path, std::uint64_t number);

// The durable result of a drawn round (docs/STORAGE.md, "The round result").
struct RoundResult {
  std::uint64_t round = 0;
  std::uint32_t winning_number = 0;
  std::uint64_t bets = 0;                      // bets the draw counted (agencies that took part)
  std::int64_t drawn_at = 0;                   // Unix time of the draw, seconds
  std::uint64_t bets_file_size = 0;            // bytes of the bets file the draw read
  std::array<std::uint8_t, 32> bets_sha256{};  // SHA-256 of those bytes
  // Index 1..N, [0] unused: whether the agency took part (it finished before
  // the draw) and its winning documents in bets-file order.
  std::vector<bool> took_part;
  std::vector<std::vector<std::string>> winners;

  std::uint32_t agencies() const {
    return winners.empty() ? 0 : static_cast<std::uint32_t>(winners.size() - 1);
  }
  std::uint64_t winner_count() const;
  bool operator==(const RoundResult&) const = default;
};

// The lowercase hex of a SHA-256, as logs and lotteryctl show it.
std::string Sha256Hex(std::span<const std::uint8_t> digest);

void EncodeRoundResult(std::string& out, const RoundResult& result);
Result<RoundResult> DecodeRoundResult(std::string_view bytes);
Result<RoundResult> ReadRoundResult(const std::string& path);

// One line of `lotteryctl rounds`.
struct RoundSummary {
  std::uint64_t number = 0;
  RoundState state = RoundState::kOpen;
  std::uint64_t bets = 0;
  std::uint64_t winners = 0;
  std::int64_t drawn_at = 0;  // Unix seconds; 0: not drawn
};

// The archived rounds found under ArchiveRoot, in number order.
Result<std::vector<RoundSummary>> ListArchivedRounds(const std::string& storage_path);

// What VerifyRound found: `differences` empty means the archive matches its
// record.
struct RoundVerification {
  RoundResult recorded;
  std::vector<std::string> differences;
  bool ok() const { return differences.empty(); }
};

// Recomputes round `number`'s SHA-256 and winners from its archived files
// and compares them with its result. Fails (kNotFound-like kConfig) when the
// round is not archived or its result does not decode.
Result<RoundVerification> VerifyRound(const std::string& storage_path, std::uint64_t number);

// Encodes `result` and replaces `path` with it durably (a temporary file,
// synced and renamed, the directory synced).
Status WriteRoundResult(const std::string& path, const RoundResult& result);

// SHA-256 of the first `size` bytes of the file behind `fd`.
Result<std::array<std::uint8_t, 32>> Sha256OfFile(int fd, std::uint64_t size);

// Moves round `number`'s files (which must be drawn, or written by a
// release before results) under rounds/<number>/ as hard links, the
// journal last, then StartFreshRound(number + 1). Call with the bets file's
// flock held, or before any worker exists.
Status ArchiveAndStartNext(const std::string& storage_path, std::uint64_t number);

// Replaces the current bets file with an empty one and the journal with a
// round-start record of round `number` (the commit point), removing the
// current result.
Status StartFreshRound(const std::string& storage_path, std::uint64_t number);

// Start-up, before recovery: completes an open that a crash interrupted (the
// current journal's round is already archived) and archives a round that a
// release without result files drew. Returns the new round's number when
// it started one.
Result<std::optional<std::uint64_t>> FinishInterruptedOpen(const std::string& storage_path);

// Parent, at draw.deadline or on the operator's word: journals that betting
// closed (synced, under the bets file's flock, as FINISHED is) and closes it
// in the segment (CloseBetting).
Result<BettingClosure> CloseBettingDurably(const std::string& storage_path, SharedSegment& shared);

// Parent: archives the current round, which must be drawn, and opens round
// number + 1: moves the bets file, journal and result under rounds/<N>/,
// creates empty ones with a round-start record, syncs the directories, and
// resets the segment's round state. Returns the new round's number. Fails,
// changing nothing, when the round is not drawn (the message says its state).
Result<std::uint64_t> OpenNextRound(const std::string& storage_path, SharedSegment& shared);

}  // namespace lottery
