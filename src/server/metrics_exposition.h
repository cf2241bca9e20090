// Renders the server's metrics (shm/metrics.h) in the Prometheus text
// exposition format, version 0.0.4. The names, types and labels are listed in
// docs/METRICS.md; metrics_exposition_test.cc checks the text against it.
//
// Reads the counters with relaxed atomic loads only: the parent renders while
// workers update, without taking any lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "shm/metrics.h"

namespace lottery {

// What the parent knows that the shared counters do not hold.
struct MetricsContext {
  std::uint32_t agencies = 0;  // server.agencies
  std::uint64_t workers = 0;   // live workers now
  std::string_view version;    // the build's version
  std::string_view tls_mode;   // "required" or "off"
  std::string_view sync_mode;  // "always" or "never"
  // The round's state (storage/rounds.h RoundState): 1 open, 2 closed, 3
  // drawn; server/round_status.h ReadRoundReport works it out.
  std::uint32_t round_state = 1;
};

// The Content-Type of RenderMetrics' text.
inline constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";

std::string RenderMetrics(const ServerMetrics& metrics, const MetricsContext& context);

}  // namespace lottery
