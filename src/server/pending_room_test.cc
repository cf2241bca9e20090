#include "server/pending_room.h"

#include <vector>

#include <doctest/doctest.h>

namespace lottery {
namespace {

const RoomLimits kLimits{3, 2, 10};

TEST_CASE("a connection that fits is accepted") {
  PendingRoom room;
  room.Add(10, "a");
  Admission a = room.Admit("b", {}, 1, kLimits);
  CHECK(a.kind == Admission::kAccept);
}

TEST_CASE("a full room evicts its oldest unidentified connection, not an agency's") {
  PendingRoom room;
  room.Add(10, "a");
  room.Add(11, "b");
  room.Add(12, "c");
  room.Add(13, "d");
  const std::vector<pid_t> introduced = {10};  // the oldest said HELLO
  Admission a = room.Admit("e", introduced, 4, kLimits);
  CHECK(a.kind == Admission::kEvict);
  CHECK(a.reason == Admission::kMaxPending);
  CHECK(a.victim == 11);
  room.MarkEvicted(11);
  CHECK(room.WasEvicted(11));
  // The evicted one no longer counts: room for one more.
  CHECK(room.Admit("e", introduced, 4, kLimits).kind == Admission::kAccept);
}

TEST_CASE("in a crowded room a source at its cap loses its own oldest connection") {
  PendingRoom room;
  room.Add(10, "x");
  room.Add(11, "s");
  room.Add(12, "s");
  Admission a = room.Admit("s", {}, 3, kLimits);
  CHECK(a.kind == Admission::kEvict);
  CHECK(a.reason == Admission::kPerSource);
  CHECK(a.victim == 11);
}

TEST_CASE("below three-quarters of the room, agencies sharing an address are not evicted") {
  // 1,000 agencies behind one address connecting at once, room 2,000.
  const RoomLimits limits{2000, 8, 3000};
  PendingRoom room;
  for (pid_t pid = 100; pid < 1100; ++pid) {
    CHECK(room.Admit("10.0.0.1", {}, 1, limits).kind == Admission::kAccept);
    room.Add(pid, "10.0.0.1");
  }
  // Crowded (3/4 of 2,000 unidentified): the cap applies again.
  for (pid_t pid = 1100; pid < 1600; ++pid) room.Add(pid, "10.0.0.1");
  Admission a = room.Admit("10.0.0.1", {}, 1500, limits);
  CHECK(a.kind == Admission::kEvict);
  CHECK(a.reason == Admission::kPerSource);
  CHECK(a.victim == 100);
}

TEST_CASE("at max_connections: evict an unidentified one (the caller refuses the new one)") {
  PendingRoom room;
  room.Add(10, "a");
  room.Add(11, "b");
  const RoomLimits limits{8, 8, 2};
  const std::vector<pid_t> one = {11};
  Admission a = room.Admit("c", one, 2, limits);
  CHECK(a.kind == Admission::kEvict);
  CHECK(a.victim == 10);
  const std::vector<pid_t> both = {10, 11};
  Admission r = room.Admit("c", both, 2, limits);
  CHECK(r.kind == Admission::kRefuse);
  CHECK(r.reason == Admission::kMaxConnections);
}

TEST_CASE("a reaped worker is forgotten") {
  PendingRoom room;
  room.Add(10, "s");
  room.Add(11, "s");
  room.Forget(10);
  CHECK(room.Admit("s", {}, 1, kLimits).kind == Admission::kAccept);
  CHECK_FALSE(room.WasEvicted(10));
}

}  // namespace
}  // namespace lottery
