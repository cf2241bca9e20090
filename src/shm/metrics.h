// The server's operational counters, kept in the shared segment
// (SharedState::metrics) so that the parent can publish them on
// server.metrics_address without asking its workers anything.
//
// Lock discipline: none. Every field is a lock-free atomic, written with
// relaxed increments or stores and read with relaxed loads; the parent never
// takes SharedState::mutex to read them, so a scrape cannot wait behind a
// worker (or a dead one). A scrape may see one counter a batch ahead of
// another: each value is exact, the set is not a snapshot.
//
// Owners (who writes what):
//  - connections_accepted, refusals by the parent (max_connections,
//    max_pending): the parent (server/postmaster.cc);
//  - refusals by a worker, batches and bets stored and rejected, bytes
//    stored, ack latency: the worker (worker/);
//  - fdatasync calls and their durations, round_bets, round: storage/;
//  - connected: shm/shared_state.cc's slot operations; finished, draw state
//    and duration: worker/draw_barrier.cc.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "common/agency_limit.h"

namespace lottery {

// Upper bounds, in microseconds, of the latency histograms' buckets; a
// last, unbounded bucket (+Inf) follows. From 50 us (a batch acked from the
// page cache) to 10 s (a stalled disk).
inline constexpr std::uint64_t kLatencyBoundsUs[] = {
    50,    100,    250,    500,    1000,    2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};
inline constexpr std::size_t kLatencyBuckets = std::size(kLatencyBoundsUs) + 1;

// A Prometheus-style histogram of durations: per-bucket counts (not
// cumulative; the exposition adds them up), the count and the sum.
struct SharedHistogram {
  std::atomic<std::uint64_t> buckets[kLatencyBuckets] = {};
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint64_t> sum_ns{0};

  void Record(std::chrono::nanoseconds elapsed);
};

// Why a connection was refused before it became an agency's.
enum class Refusal : std::uint32_t {
  kMaxConnections = 0,  // parent: server.max_connections reached
  kMaxPending,          // parent: server.max_pending reached
  kTlsHandshake,        // the TLS handshake failed (bad or missing certificate, stall)
  kTlsRequired,         // plaintext to a server that requires TLS
  kNotAuthorized,       // HELLO for an agency the certificate is not
  kBadAgency,           // HELLO for an agency outside 1..server.agencies
  kAgencyBusy,          // the agency is connected already
  kBettingClosed,       // betting closed before the agency finished
  kHelloTimeout,        // said nothing within server.hello_timeout
  kProtocol,            // anything else before a valid HELLO
  kEvicted,             // parent: the oldest unidentified connection, closed for a newer one
  kCount
};
std::string_view RefusalName(Refusal reason);

struct AgencyMetrics {
  std::atomic<std::uint64_t> bets_stored{0};  // by this process
  std::atomic<std::uint64_t> batches_stored{0};
  std::atomic<std::uint64_t> bets_rejected{0};  // bets of refused batches
  std::atomic<std::uint64_t> batches_rejected{0};
  std::atomic<std::uint64_t> round_bets{0};  // stored this round, recovered ones included
  std::atomic<std::uint32_t> connected{0};   // a worker serves the agency (0/1)
  std::atomic<std::uint32_t> finished{0};    // the agency said FINISHED (0/1)
};

struct ServerMetrics {
  std::atomic<std::uint64_t> round{0};  // the round's number (storage/recovery.h)
  std::atomic<std::uint64_t> connections_accepted{0};
  std::atomic<std::uint64_t> refused[static_cast<std::size_t>(Refusal::kCount)] = {};
  std::atomic<std::uint64_t> bytes_stored{0};
  SharedHistogram fdatasync;                 // each fdatasync() of the bets file or the journal
  SharedHistogram batch_ack;                 // a BETS frame read whole -> its ACK written
  std::atomic<std::uint32_t> draw_state{0};  // DrawState
  std::atomic<std::uint64_t> draw_duration_ns{0};
  AgencyMetrics agencies[kMaxAgencies + 1];  // index 1..agencies; 0 unused

  void Refuse(Refusal reason) {
    refused[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  }
};

static_assert(std::atomic<std::uint64_t>::is_always_lock_free,
              "the metrics must be readable without a lock");

}  // namespace lottery
