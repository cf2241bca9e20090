#include "server/round_status.h"

#include <fmt/format.h>

namespace lottery {

RoundSummary ReadRoundSummary(SharedState& state) {
  SharedLock lock(state);
  RoundSummary r;
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

std::string FormatRoundStatus(const RoundSummary& r) {
  switch (r.draw) {
    case DrawState::kDone:
      return fmt::format("draw done: {} bets, {} winners, {}/{} agencies finished", r.bets,
                         r.winners, r.finished, r.agencies);
    case DrawState::kRunning:
      return fmt::format("drawing: {} bets stored, {}/{} agencies finished", r.bets, r.finished,
                         r.agencies);
    case DrawState::kNotYet:
      break;
  }
  return fmt::format("round in progress: {}/{} agencies connected, {}/{} finished, {} bets stored",
                     r.connected, r.agencies, r.finished, r.agencies, r.bets);
}

}  // namespace lottery
