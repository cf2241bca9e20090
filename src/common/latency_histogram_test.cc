#include "common/latency_histogram.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <vector>

namespace lottery {
namespace {

using std::chrono::microseconds;

TEST_CASE("every value falls in a bucket whose bound is at most 12.5% above it") {
  std::size_t last_bucket = 0;
  for (std::uint64_t v = 0; v < 1'000'000; v += (v < 4096 ? 1 : 997)) {
    std::size_t b = LatencyHistogram::TEST_BucketOf(v);
    CHECK(b >= last_bucket);  // monotonic
    last_bucket = b;
    std::uint64_t bound = LatencyHistogram::TEST_UpperBound(b);
    REQUIRE(bound >= v);
    if (v < 16) CHECK(bound == v);
    CHECK(static_cast<double>(bound) <= static_cast<double>(v) * 1.125 + 1);
    if (b > 0) CHECK(LatencyHistogram::TEST_UpperBound(b - 1) < v);
  }
  CHECK(LatencyHistogram::TEST_BucketOf(~std::uint64_t{0}) < 64 * 8);
}

TEST_CASE("percentiles match a sorted sample within the bucket precision") {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(6.0, 1.2);  // ~400 us median, long tail
  LatencyHistogram h;
  std::vector<std::uint64_t> values;
  for (int i = 0; i < 100000; ++i) {
    auto v = static_cast<std::uint64_t>(dist(rng));
    values.push_back(v);
    h.Record(microseconds(v));
  }
  std::sort(values.begin(), values.end());
  CHECK(h.count() == values.size());
  for (double q : {0.5, 0.9, 0.99, 1.0}) {
    std::uint64_t exact = values[static_cast<std::size_t>(std::ceil(q * values.size())) - 1];
    std::uint64_t got = h.PercentileMicros(q);
    CHECK(got >= exact);
    CHECK(static_cast<double>(got) <= static_cast<double>(exact) * 1.125 + 1);
  }
}

TEST_CASE("an empty histogram reports 0; one value reports its bucket") {
  LatencyHistogram h;
  CHECK(h.PercentileMicros(0.5) == 0);
  h.Record(microseconds(5));
  CHECK(h.PercentileMicros(0.5) == 5);
  CHECK(h.PercentileMicros(0.99) == 5);
  h.Record(std::chrono::nanoseconds(-3));  // a clock step never underflows
  CHECK(h.PercentileMicros(0.5) == 0);
}

}  // namespace
}  // namespace lottery
