#include "server/round_status.h"

#include <doctest/doctest.h>

namespace lottery {
namespace {

TEST_CASE("the round summary follows the shared state") {
  auto segment = SharedSegment::Create(5);
  REQUIRE(segment);
  SharedState& s = segment->state();
  RoundSummary empty = ReadRoundSummary(s);
  CHECK(empty.agencies == 5);
  CHECK(empty.connected == 0);
  CHECK(FormatRoundStatus(empty) ==
        "round in progress: 0/5 agencies connected, 0/5 finished, 0 bets stored");
  s.slots[1].owner_pid = 100;
  s.slots[4].owner_pid = 101;
  s.finished_count = 1;
  s.total_bets = 48211;
  RoundSummary mid = ReadRoundSummary(s);
  CHECK(mid.connected == 2);
  CHECK(FormatRoundStatus(mid) ==
        "round in progress: 2/5 agencies connected, 1/5 finished, 48211 bets stored");
  s.finished_count = 5;
  s.draw_state = DrawState::kRunning;
  CHECK(FormatRoundStatus(ReadRoundSummary(s)) == "drawing: 48211 bets stored, 5/5 agencies finished");
  s.draw_state = DrawState::kDone;
  s.slots[1].winners_count = 2;
  s.slots[5].winners_count = 3;
  RoundSummary done = ReadRoundSummary(s);
  CHECK(done.winners == 5);
  CHECK(FormatRoundStatus(done) == "draw done: 48211 bets, 5 winners, 5/5 agencies finished");
  CHECK_FALSE(done == mid);
}

}  // namespace
}  // namespace lottery
