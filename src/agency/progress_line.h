// ProgressLine draws the agency's live progress on a terminal: one line,
// redrawn in place, with the bets sent and acknowledged, how much of the
// dataset was read, the rate, an estimate of the time left, and the
// reconnects. Log lines keep flowing above it (common/log.h,
// SetLogStatusLine). A disabled ProgressLine does nothing at all, so the log
// of an agency whose stderr is not a terminal is unchanged.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace lottery {

struct AgencyProgress {
  std::uint64_t bets_sent = 0;
  std::uint64_t bets_acked = 0;
  std::uint64_t bytes_read = 0;   // of the dataset
  std::uint64_t bytes_total = 0;  // the dataset's size (0: unknown, e.g. a pipe)
  std::uint64_t reconnects = 0;
};

// The line for `p` after `elapsed`: "agency 3 | sent 12,300 | acked 12,100 |
// 45% of 722.0 KiB | 51,200 bets/s | ETA 3s | reconnects 0".
std::string FormatProgress(std::uint32_t agency, const AgencyProgress& p,
                           std::chrono::steady_clock::duration elapsed);

class ProgressLine {
 public:
  using Clock = std::chrono::steady_clock;

  ProgressLine(bool enabled, std::uint32_t agency)
      : enabled_(enabled), agency_(agency), started_(Clock::now()) {}
  ~ProgressLine() { Finish(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  bool enabled() const { return enabled_; }
  // Redraws the line, at most every 100 ms.
  void Update(const AgencyProgress& p);
  // Draws the last state and removes the line, leaving it printed as a
  // log-free line of its own (idempotent).
  void Finish();

 private:
  bool enabled_;
  std::uint32_t agency_;
  Clock::time_point started_;
  Clock::time_point next_draw_{};
  AgencyProgress last_;
  bool drawn_ = false;
};

}  // namespace lottery
