// LatencyHistogram counts durations in fixed log-linear buckets (8 per power
// of two of microseconds), so recording costs no allocation and the memory
// stays 4 KiB however many values it holds. The agency uses it for the time
// from sending a batch to its ack. A percentile comes back as the upper bound
// of its bucket: exact below 16 us, at most 12.5% above the true value above.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>

namespace lottery {

class LatencyHistogram {
 public:
  void Record(std::chrono::nanoseconds duration);

  std::uint64_t count() const { return count_; }
  // The smallest bucket bound (in microseconds) such that at least
  // `fraction` (0..1] of the recorded values are at or below it; 0 when empty.
  std::uint64_t PercentileMicros(double fraction) const;

  // BucketOf and UpperBound, for tests only.
  static std::size_t TEST_BucketOf(std::uint64_t micros) { return BucketOf(micros); }
  static std::uint64_t TEST_UpperBound(std::size_t bucket) { return UpperBound(bucket); }

 private:
  // Bucket of a value in microseconds, and the largest value it holds.
  static std::size_t BucketOf(std::uint64_t micros);
  static std::uint64_t UpperBound(std::size_t bucket);

  static constexpr std::size_t kSubBuckets = 8;
  std::array<std::uint64_t, 64 * kSubBuckets> counts_{};
  std::uint64_t count_ = 0;
};

}  // namespace lottery
