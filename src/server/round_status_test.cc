#include "server/round_status.h"

#include <doctest/doctest.h>

namespace lottery {
namespace {

TEST_CASE("the round summary follows the shared state") {
  auto segment = SharedSegment::Create(5);
  REQUIRE(segment);
  SharedState& s = segment->state();
  RoundProgress empty = ReadRoundSummary(s);
  CHECK(empty.agencies == 5);
  CHECK(empty.connected == 0);
  CHECK(FormatRoundStatus(empty) ==
        "round in progress: 0/5 agencies connected, 0/5 finished, 0 bets stored");
  s.slots[1].owner_pid = 100;
  s.slots[4].owner_pid = 101;
  s.finished_count = 1;
  s.total_bets = 48211;
  RoundProgress mid = ReadRoundSummary(s);
  CHECK(mid.connected == 2);
  CHECK(FormatRoundStatus(mid) ==
        "round in progress: 2/5 agencies connected, 1/5 finished, 48211 bets stored");
  s.finished_count = 5;
  s.draw_state = DrawState::kRunning;
  CHECK(FormatRoundStatus(ReadRoundSummary(s)) ==
        "drawing: 48211 bets stored, 5/5 agencies finished");
  s.draw_state = DrawState::kDone;
  s.slots[1].winners_count = 2;
  s.slots[5].winners_count = 3;
  RoundProgress done = ReadRoundSummary(s);
  CHECK(done.winners == 5);
  CHECK(FormatRoundStatus(done) == "draw done: 48211 bets, 5 winners, 5/5 agencies finished");
  CHECK_FALSE(done == mid);
}

TEST_CASE("the round report reads the lock-free metrics: open, closed, drawn") {
  auto segment = SharedSegment::Create(3);
  REQUIRE(segment);
  SharedState& s = segment->state();
  s.metrics.round.store(4);
  RoundReport open = ReadRoundReport(s);
  CHECK(open.round == 4);
  CHECK(open.agencies == 3);
  CHECK(open.state == RoundState::kOpen);
  s.metrics.agencies[1].connected.store(1);
  s.metrics.agencies[1].finished.store(1);
  s.metrics.agencies[1].round_bets.store(40);
  s.metrics.agencies[3].round_bets.store(2);
  RoundReport mid = ReadRoundReport(s);
  CHECK(mid.connected == 1);
  CHECK(mid.finished == 1);
  CHECK(mid.bets == 42);
  CHECK(mid.state == RoundState::kOpen);
  CloseBetting(s);
  CHECK(ReadRoundReport(s).state == RoundState::kClosed);
  s.metrics.draw_state.store(static_cast<std::uint32_t>(DrawState::kDone));
  CHECK(ReadRoundReport(s).state == RoundState::kDrawn);
}

TEST_CASE("every agency finished closes the round even without CloseBetting") {
  auto segment = SharedSegment::Create(2);
  REQUIRE(segment);
  SharedState& s = segment->state();
  s.metrics.agencies[1].finished.store(1);
  s.metrics.agencies[2].finished.store(1);
  CHECK(ReadRoundReport(s).state == RoundState::kClosed);
}

}  // namespace
}  // namespace lottery
