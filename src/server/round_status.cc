#include "server/round_status.h"

#include <fmt/format.h>

namespace lottery {

RoundProgress ReadRoundSummary(SharedState& state) {
  SharedLock lock(state);
  RoundProgress r;
  r.agencies = state.agencies;
  r.finished = state.finished_count;
  r.bets = state.total_bets;
  r.draw = state.draw_state;
  for (std::uint32_t a = 1; a <= state.agencies; ++a) {
    if (state.slots[a].owner_pid != 0) ++r.connected;
    r.winners += state.slots[a].winners_count;
  }
  return r;
}

std::string FormatRoundStatus(const RoundProgress& r) {
  switch (r.draw) {
    case DrawState::kDone:
      return fmt::format("draw done: {} bets, {} winners, {}/{} agencies finished", r.bets,
                         r.winners, r.finished, r.agencies);
    case DrawState::kRunning:
      return fmt::format("drawing: {} bets stored, {}/{} agencies finished", r.bets, r.finished,
                         r.agencies);
    case DrawState::kNotYet: break;
  }
  return fmt::format("round in progress: {}/{} agencies connected, {}/{} finished, {} bets stored",
                     r.connected, r.agencies, r.finished, r.agencies, r.bets);
}

RoundReport ReadRoundReport(const SharedState& state) {
  const ServerMetrics& m = state.metrics;
  RoundReport r;
  r.round = m.round.load(std::memory_order_relaxed);
  r.agencies = state.agencies;  // fixed when the segment is created
  for (std::uint32_t a = 1; a <= r.agencies; ++a) {
    r.connected += m.agencies[a].connected.load(std::memory_order_relaxed) != 0;
    r.finished += m.agencies[a].finished.load(std::memory_order_relaxed) != 0;
    r.bets += m.agencies[a].round_bets.load(std::memory_order_relaxed);
  }
  if (m.draw_state.load(std::memory_order_relaxed) ==
      static_cast<std::uint32_t>(DrawState::kDone)) {
    r.state = RoundState::kDrawn;
  } else if (IsBettingClosed(state) || (r.agencies > 0 && r.finished == r.agencies)) {
    r.state = RoundState::kClosed;
  }
  return r;
}

}  // namespace lottery
