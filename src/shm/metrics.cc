#include "shm/metrics.h"

#include <algorithm>

namespace lottery {

void SharedHistogram::Record(std::chrono::nanoseconds elapsed) {
  const auto ns = static_cast<std::uint64_t>(std::max<std::int64_t>(0, elapsed.count()));
  const std::uint64_t us = ns / 1000;
  // The first bound >= the value: a value equal to a bound counts in its bucket (le).
  const auto* bound =
      std::lower_bound(std::begin(kLatencyBoundsUs), std::end(kLatencyBoundsUs), us);
  buckets[bound - std::begin(kLatencyBoundsUs)].fetch_add(1, std::memory_order_relaxed);
  count.fetch_add(1, std::memory_order_relaxed);
  sum_ns.fetch_add(ns, std::memory_order_relaxed);
}

std::string_view RefusalName(Refusal reason) {
  switch (reason) {
    case Refusal::kMaxConnections: return "max_connections";
    case Refusal::kMaxPending: return "max_pending";
    case Refusal::kTlsHandshake: return "tls_handshake";
    case Refusal::kTlsRequired: return "tls_required";
    case Refusal::kNotAuthorized: return "not_authorized";
    case Refusal::kBadAgency: return "bad_agency";
    case Refusal::kAgencyBusy: return "agency_busy";
    case Refusal::kBettingClosed: return "betting_closed";
    case Refusal::kHelloTimeout: return "hello_timeout";
    case Refusal::kProtocol: return "protocol";
    case Refusal::kEvicted: return "evicted";
    case Refusal::kCount: break;
  }
  return "unknown";
}

}  // namespace lottery
