#include "agency/progress_line.h"

#include <unistd.h>

#include <fmt/format.h>

#include "common/log.h"

namespace lottery {
namespace {

// The progress line is drawn at most this often.
constexpr auto kRedrawInterval = std::chrono::milliseconds(100);

// 1234567 -> "1,234,567".
std::string Grouped(std::uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string Size(std::uint64_t bytes) {
  if (bytes < 1024) return fmt::format("{} B", bytes);
  if (bytes < 1024 * 1024) return fmt::format("{:.1f} KiB", bytes / 1024.0);
  if (bytes < 1024ull * 1024 * 1024) return fmt::format("{:.1f} MiB", bytes / (1024.0 * 1024));
  return fmt::format("{:.1f} GiB", bytes / (1024.0 * 1024 * 1024));
}

std::string Duration(double seconds) {
  auto s = static_cast<std::uint64_t>(seconds + 0.5);
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}h{:02}m", s / 3600, s / 60 % 60);
}

}  // namespace

std::string FormatProgress(std::uint32_t agency, const AgencyProgress& p,
                           std::chrono::steady_clock::duration elapsed) {
  const double seconds = std::chrono::duration<double>(elapsed).count();
  std::string line = fmt::format("agency {} | sent {} | acked {}", agency, Grouped(p.bets_sent),
                                 Grouped(p.bets_acked));
  if (p.bytes_total > 0) {
    const std::uint64_t read = std::min(p.bytes_read, p.bytes_total);
    line += fmt::format(" | {}% of {}", read * 100 / p.bytes_total, Size(p.bytes_total));
  } else {
    line += fmt::format(" | read {}", Size(p.bytes_read));
  }
  line += seconds > 0 ? fmt::format(" | {} bets/s",
                                    Grouped(static_cast<std::uint64_t>(p.bets_acked / seconds)))
                      : std::string(" | - bets/s");
  // The time left from the share of the file read so far (batches are cut
  // as the file is read, so bytes track bets closely).
  if (p.bytes_total > 0 && p.bytes_read > 0 && p.bytes_read < p.bytes_total && seconds > 0) {
    line += " | ETA " + Duration(seconds * static_cast<double>(p.bytes_total - p.bytes_read) /
                                 static_cast<double>(p.bytes_read));
  } else if (p.bytes_total > 0 && p.bytes_read >= p.bytes_total) {
    // The reader takes a small file in whole at once: read is not done. Only
    // when every bet sent is acked is nothing left.
    line += p.bets_acked >= p.bets_sent && p.bets_sent > 0 ? " | ETA 0s" : " | ETA -";
  }
  line += fmt::format(" | reconnects {}", p.reconnects);
  return line;
}

void ProgressLine::Update(const AgencyProgress& p) {
  if (!enabled_) return;
  last_ = p;
  const auto now = Clock::now();
  if (drawn_ && now < next_draw_) return;
  next_draw_ = now + kRedrawInterval;
  drawn_ = true;
  SetLogStatusLine(FormatProgress(agency_, p, now - started_));
}

void ProgressLine::Finish() {
  if (!enabled_ || !drawn_) return;
  // The final state stays on the screen as a line of its own.
  std::string last = FormatProgress(agency_, last_, Clock::now() - started_) + "\n";
  SetLogStatusLine("");
  (void)!::write(STDERR_FILENO, last.data(), last.size());
  drawn_ = false;
}

}  // namespace lottery
