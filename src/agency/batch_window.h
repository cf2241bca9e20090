// BatchWindow holds the BETS frames an agency has built but the server has
// not acknowledged yet, oldest first, up to a fixed number (batch.window).
// It owns one frame buffer per slot, sized for a whole frame the first time
// the slot is used, so a round of any size reuses the same memory and a
// small one touches only the slots it fills. Acks arrive in order, so only the
// oldest batch is ever retired.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace lottery {

class BatchWindow {
 public:
  using Clock = std::chrono::steady_clock;

  struct Batch {
    std::string frame;  // one whole BETS frame
    std::uint64_t seq = 0;
    std::uint16_t count = 0;  // bets in the frame
    bool sent = false;        // written on the current connection
    bool refused = false;     // the server refused it; RemoveRefused() drops it
    Clock::time_point sent_at;
  };

  explicit BatchWindow(std::size_t capacity);

  std::size_t capacity() const { return slots_.size(); }
  std::size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  bool full() const { return size_ == slots_.size(); }
  // Bytes the slots' frame buffers hold (their capacities), used or not.
  std::size_t BufferBytes() const;

  // The cleared buffer of the next free slot, to fill with one frame and then
  // Push(). Only while !full().
  std::string& NextFrame();
  // Adds the frame built in NextFrame() as the newest batch (not sent yet).
  void Push(std::uint64_t seq, std::uint16_t count);

  // The i-th batch, 0 being the oldest.
  Batch& at(std::size_t i) { return slots_[(head_ + i) % slots_.size()]; }
  Batch& oldest() { return at(0); }
  void PopOldest();

  // Drops the batches marked refused, keeping the others in order.
  void RemoveRefused();
  // Every batch counts as not sent (a new connection).
  void MarkAllUnsent();
  // Gives the batches consecutive sequence numbers from `first_seq`, oldest
  // first, rewriting their frames; they count as not sent.
  void Renumber(std::uint64_t first_seq);

 private:
  std::vector<Batch> slots_;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace lottery
