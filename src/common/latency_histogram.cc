#include "common/latency_histogram.h"

#include <bit>
#include <cmath>

namespace lottery {

std::size_t LatencyHistogram::BucketOf(std::uint64_t micros) {
  if (micros < kSubBuckets) return static_cast<std::size_t>(micros);
  // e >= 3: the top bit; the next three bits pick one of 8 sub-buckets.
  const int e = std::bit_width(micros) - 1;
  const std::uint64_t sub = (micros >> (e - 3)) & (kSubBuckets - 1);
  return static_cast<std::size_t>(e - 2) * kSubBuckets + static_cast<std::size_t>(sub);
}

std::uint64_t LatencyHistogram::UpperBound(std::size_t bucket) {
  if (bucket < 2 * kSubBuckets) return bucket;
  const std::size_t e = bucket / kSubBuckets + 2;
  const std::uint64_t sub = bucket % kSubBuckets;
  return ((kSubBuckets + sub + 1) << (e - 3)) - 1;
}

void LatencyHistogram::Record(std::chrono::nanoseconds duration) {
  const auto micros = static_cast<std::uint64_t>(std::max<std::int64_t>(
      0, std::chrono::duration_cast<std::chrono::microseconds>(duration).count()));
  ++counts_[BucketOf(micros)];
  ++count_;
}

std::uint64_t LatencyHistogram::PercentileMicros(double fraction) const {
  if (count_ == 0) return 0;
  const auto rank =
      static_cast<std::uint64_t>(std::max(1.0, std::ceil(fraction * static_cast<double>(count_))));
  std::uint64_t seen = 0;
  for (std::size_t b = 0; b < counts_.size(); ++b) {
    seen += counts_[b];
    if (seen >= rank) return UpperBound(b);
  }
  return UpperBound(counts_.size() - 1);
}

}  // namespace lottery
