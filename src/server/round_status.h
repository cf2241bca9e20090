// A snapshot of the round for the service manager's STATUS= line and the
// parent's own bookkeeping: how many agencies are connected and finished, how
// many bets are stored, where the draw is. Read from the shared segment.
#pragma once

#include <cstdint>
#include <string>

#include "shm/shared_state.h"
#include "storage/rounds.h"

namespace lottery {

struct RoundProgress {
  std::uint32_t agencies = 0;
  std::uint32_t connected = 0;  // agencies with a live worker
  std::uint32_t finished = 0;
  std::uint64_t bets = 0;
  DrawState draw = DrawState::kNotYet;
  std::uint64_t winners = 0;  // after the draw

  bool operator==(const RoundProgress&) const = default;
};

// Takes the shared lock briefly.
RoundProgress ReadRoundSummary(SharedState& state);

// One line, e.g. "round in progress: 2/5 agencies connected, 1/5 finished,
// 48211 bets stored" or "draw done: 80000 bets, 12 winners, 5/5 agencies".
std::string FormatRoundStatus(const RoundProgress& summary);

// The round as `lotteryctl status` and the lottery_round_state gauge report
// it, from lock-free reads only (the metrics and betting_closed), so that a
// control request never waits behind a worker.
struct RoundReport {
  std::uint64_t round = 0;
  RoundState state = RoundState::kOpen;  // open, closed or drawn
  std::uint32_t agencies = 0;
  std::uint32_t connected = 0;
  std::uint32_t finished = 0;
  std::uint64_t bets = 0;  // stored this round, recovered ones included
};

// Drawn once the draw is done; closed when betting was closed or every
// agency finished; else open.
RoundReport ReadRoundReport(const SharedState& state);

}  // namespace lottery
