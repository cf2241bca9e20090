#include "agency/batch_window.h"

#include <doctest/doctest.h>

#include "wire/bet.h"
#include "wire/protocol.h"

namespace lottery {
namespace {

std::uint64_t SeqOf(const std::string& frame) {
  BetBatchDecoder d(std::string_view(frame).substr(kFrameHeaderSize));
  REQUIRE(d.Start());
  return d.seq();
}

void Add(BatchWindow& w, std::uint64_t seq, std::uint16_t bets) {
  REQUIRE_FALSE(w.full());
  std::string& frame = w.NextFrame();
  CHECK(frame.empty());
  BetBatchEncoder e(frame, seq);
  for (std::uint16_t i = 0; i < bets; ++i)
    REQUIRE(e.Add(BetView{0, "Ana", "Lorca", "1", "1990-01-01", i}));
  w.Push(seq, e.count());
}

TEST_CASE("a slot's buffer holds a whole frame from its first use on") {
  BatchWindow w(256);
  std::string& frame = w.NextFrame();
  CHECK(frame.capacity() >= kMaxFrameSize);
  const char* buffer = frame.data();
  frame.assign(kMaxFrameSize, 'x');  // a whole frame: no reallocation
  CHECK(frame.data() == buffer);
}

TEST_CASE("a small agency's window holds buffers only for the slots it used") {
  BatchWindow w(256);
  const std::size_t empty = w.BufferBytes();  // the slots' inline storage
  CHECK(empty < 256 * 64);
  for (std::uint64_t seq = 1; seq <= 6; ++seq) Add(w, seq, 10);
  // Six frame buffers, not 256 (about 2 MiB if every slot were sized).
  CHECK(w.BufferBytes() >= 6 * kMaxFrameSize);
  CHECK(w.BufferBytes() <= empty + 6 * 2 * kMaxFrameSize);
  // A long round cycles through every slot and then reuses them.
  for (std::uint64_t seq = 7; seq <= 1000; ++seq) {
    w.PopOldest();
    Add(w, seq, 10);
  }
  const std::size_t all = w.BufferBytes();
  CHECK(all >= 256 * kMaxFrameSize);
  for (std::uint64_t seq = 1001; seq <= 2000; ++seq) {
    w.PopOldest();
    Add(w, seq, 10);
  }
  CHECK(w.BufferBytes() == all);
}

TEST_CASE("batches leave the window oldest first, and slots are reused") {
  BatchWindow w(3);
  CHECK(w.capacity() == 3);
  CHECK(w.empty());
  Add(w, 1, 1);
  Add(w, 2, 2);
  Add(w, 3, 3);
  CHECK(w.full());
  const char* first_buffer = w.oldest().frame.data();
  CHECK(w.oldest().seq == 1);
  w.PopOldest();
  CHECK(w.oldest().seq == 2);
  CHECK(w.at(1).seq == 3);
  Add(w, 4, 4);  // wraps around into the first slot
  CHECK(w.at(2).seq == 4);
  CHECK(w.at(2).count == 4);
  CHECK(w.at(2).frame.data() == first_buffer);  // no new allocation
  CHECK(SeqOf(w.at(2).frame) == 4);
  while (!w.empty()) w.PopOldest();
  CHECK(w.size() == 0);
}

TEST_CASE("renumbering rewrites every frame in flight and marks it unsent") {
  BatchWindow w(4);
  Add(w, 7, 1);
  Add(w, 8, 1);
  Add(w, 9, 1);
  w.PopOldest();  // 7 was rejected: 8 and 9 move down to 7 and 8
  for (std::size_t i = 0; i < w.size(); ++i) w.at(i).sent = true;
  w.Renumber(7);
  REQUIRE(w.size() == 2);
  CHECK(w.at(0).seq == 7);
  CHECK(SeqOf(w.at(0).frame) == 7);
  CHECK(w.at(1).seq == 8);
  CHECK(SeqOf(w.at(1).frame) == 8);
  CHECK_FALSE(w.at(0).sent);
  CHECK_FALSE(w.at(1).sent);
  w.at(0).sent = true;
  w.MarkAllUnsent();
  CHECK_FALSE(w.at(0).sent);
}

TEST_CASE("refused batches leave from the middle, the rest keep their order") {
  BatchWindow w(4);
  Add(w, 9, 1);
  w.PopOldest();  // moves the head so the ring wraps
  Add(w, 1, 1);
  Add(w, 2, 2);
  Add(w, 3, 3);
  Add(w, 4, 4);
  w.at(1).refused = true;
  w.at(3).refused = true;
  w.RemoveRefused();
  REQUIRE(w.size() == 2);
  CHECK(w.at(0).seq == 1);
  CHECK(w.at(1).seq == 3);
  CHECK(SeqOf(w.at(1).frame) == 3);
  Add(w, 5, 1);
  Add(w, 6, 1);
  CHECK(w.full());
  CHECK(w.at(3).seq == 6);
  CHECK_FALSE(w.at(3).refused);
}

}  // namespace
}  // namespace lottery
