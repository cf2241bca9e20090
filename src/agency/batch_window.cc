#include "agency/batch_window.h"

#include "wire/protocol.h"

namespace lottery {

BatchWindow::BatchWindow(std::size_t capacity) : slots_(capacity == 0 ? 1 : capacity) {}

std::string& BatchWindow::NextFrame() {
  std::string& frame = slots_[(head_ + size_) % slots_.size()].frame;
  frame.clear();
  // Sized on first use: an agency with a few batches does not pay for a
  // window of 256 it never fills.
  if (frame.capacity() < kMaxFrameSize) frame.reserve(kMaxFrameSize);
  return frame;
}

std::size_t BatchWindow::BufferBytes() const {
  std::size_t bytes = 0;
  for (const Batch& b : slots_) bytes += b.frame.capacity();
  return bytes;
}

void BatchWindow::Push(std::uint64_t seq, std::uint16_t count) {
  Batch& b = slots_[(head_ + size_) % slots_.size()];
  b.seq = seq;
  b.count = count;
  b.sent = false;
  b.refused = false;
  ++size_;
}

void BatchWindow::RemoveRefused() {
  std::size_t kept = 0;
  for (std::size_t i = 0; i < size_; ++i) {
    if (at(i).refused) continue;
    // Swapping keeps every slot's buffer allocated.
    if (kept != i) std::swap(at(kept), at(i));
    ++kept;
  }
  size_ = kept;
}

void BatchWindow::PopOldest() {
  head_ = (head_ + 1) % slots_.size();
  --size_;
}

void BatchWindow::MarkAllUnsent() {
  for (std::size_t i = 0; i < size_; ++i) at(i).sent = false;
}

void BatchWindow::Renumber(std::uint64_t first_seq) {
  for (std::size_t i = 0; i < size_; ++i) {
    Batch& b = at(i);
    b.seq = first_seq + i;
    SetBetsFrameSeq(b.frame, b.seq);
    b.sent = false;
  }
}

}  // namespace lottery
