#include "agency/progress_line.h"

#include <doctest/doctest.h>

#include <chrono>

namespace lottery {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST_CASE("the line: counts grouped, share of the file, rate, time left, reconnects") {
  AgencyProgress p;
  p.bets_sent = 12300;
  p.bets_acked = 12100;
  p.bytes_read = 250 * 1024;
  p.bytes_total = 1000 * 1024;
  p.reconnects = 2;
  CHECK(FormatProgress(3, p, seconds(2)) ==
        "agency 3 | sent 12,300 | acked 12,100 | 25% of 1000.0 KiB | 6,050 bets/s | ETA 6s | "
        "reconnects 2");
}

TEST_CASE("the line at the end, for a pipe, and before any time passed") {
  AgencyProgress done{5000000, 5000000, 222 * 1024 * 1024, 222 * 1024 * 1024, 0};
  CHECK(FormatProgress(1, done, seconds(100)) ==
        "agency 1 | sent 5,000,000 | acked 5,000,000 | 100% of 222.0 MiB | 50,000 bets/s | "
        "ETA 0s | reconnects 0");
  AgencyProgress pipe{10, 7, 900, 0, 0};
  CHECK(FormatProgress(2, pipe, milliseconds(500)) ==
        "agency 2 | sent 10 | acked 7 | read 900 B | 14 bets/s | reconnects 0");
  AgencyProgress start{};
  start.bytes_total = 10;
  CHECK(FormatProgress(2, start, seconds(0)) ==
        "agency 2 | sent 0 | acked 0 | 0% of 10 B | - bets/s | reconnects 0");
}

TEST_CASE("a file read in whole at once is not a round done: no ETA 0s before the acks") {
  AgencyProgress first{100, 0, 4096, 4096, 0};
  CHECK(FormatProgress(1, first, milliseconds(0)) ==
        "agency 1 | sent 100 | acked 0 | 100% of 4.0 KiB | - bets/s | ETA - | reconnects 0");
  AgencyProgress waiting{100, 40, 4096, 4096, 0};
  CHECK(FormatProgress(1, waiting, seconds(1)).find("ETA -") != std::string::npos);
}

TEST_CASE("long times left are written in minutes and hours") {
  AgencyProgress p{1, 1, 1, 3601, 0};
  CHECK(FormatProgress(1, p, seconds(1)).find("ETA 1h00m") != std::string::npos);
  AgencyProgress q{1, 1, 1, 91, 0};
  CHECK(FormatProgress(1, q, seconds(1)).find("ETA 1m30s") != std::string::npos);
}

TEST_CASE("a disabled line draws nothing and finishing it twice is harmless") {
  ProgressLine off(false, 1);
  off.Update(AgencyProgress{1, 1, 1, 2, 0});
  off.Finish();
  off.Finish();
  CHECK_FALSE(off.enabled());
}

}  // namespace lottery
