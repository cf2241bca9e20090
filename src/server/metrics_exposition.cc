#include "server/metrics_exposition.h"

#include <algorithm>
#include <atomic>
#include <iterator>

#include <fmt/format.h>

namespace lottery {
namespace {

std::uint64_t Load(const std::atomic<std::uint64_t>& v) {
  return v.load(std::memory_order_relaxed);
}
std::uint32_t Load(const std::atomic<std::uint32_t>& v) {
  return v.load(std::memory_order_relaxed);
}

double Seconds(std::uint64_t ns) { return static_cast<double>(ns) / 1e9; }

class Writer {
 public:
  explicit Writer(std::string& out) : out_(out) {}

  void Family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name,
                   type);
  }
  template <typename T>
  void Sample(std::string_view name, T value) {
    fmt::format_to(std::back_inserter(out_), "{} {}\n", name, value);
  }
  template <typename T>
  void Sample(std::string_view name, std::string_view labels, T value) {
    fmt::format_to(std::back_inserter(out_), "{}{{{}}} {}\n", name, labels, value);
  }

  // One family with a sample per agency 1..agencies.
  template <typename Field>
  void PerAgency(const ServerMetrics& m, std::uint32_t agencies, std::string_view name,
                 std::string_view type, std::string_view help, Field field) {
    Family(name, type, help);
    for (std::uint32_t a = 1; a <= agencies; ++a) {
      fmt::format_to(std::back_inserter(out_), "{}{{agency=\"{}\"}} {}\n", name, a,
                     Load(field(m.agencies[a])));
    }
  }

  void Histogram(std::string_view name, std::string_view help, const SharedHistogram& h) {
    Family(name, "histogram", help);
    // Read the buckets first: the count read after them is at least their
    // sum, so the +Inf bucket (the count) never falls below the last bound's.
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < std::size(kLatencyBoundsUs); ++i) {
      cumulative += Load(h.buckets[i]);
      fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"{}\"}} {}\n", name,
                     static_cast<double>(kLatencyBoundsUs[i]) / 1e6, cumulative);
    }
    cumulative += Load(h.buckets[kLatencyBuckets - 1]);
    const std::uint64_t count = std::max(cumulative, Load(h.count));
    fmt::format_to(std::back_inserter(out_), "{}_bucket{{le=\"+Inf\"}} {}\n", name, count);
    fmt::format_to(std::back_inserter(out_), "{}_sum {}\n{}_count {}\n", name,
                   Seconds(Load(h.sum_ns)), name, count);
  }

 private:
  std::string& out_;
};

}  // namespace

std::string RenderMetrics(const ServerMetrics& m, const MetricsContext& c) {
  std::string out;
  out.reserve(4096 + std::size_t{c.agencies} * 7 * 48);
  Writer w(out);
  w.Family("lottery_build_info", "gauge", "Always 1; the labels describe the running server.");
  w.Sample("lottery_build_info",
           fmt::format("version=\"{}\",tls=\"{}\",sync=\"{}\"", c.version, c.tls_mode, c.sync_mode),
           1);
  w.Family("lottery_round", "gauge",
           "Number of the round in progress, kept in the journal (0: resumed from a journal "
           "without round numbers).");
  w.Sample("lottery_round", Load(m.round));
  w.Family("lottery_round_state", "gauge", "The round in progress: 1 open, 2 closed, 3 drawn.");
  w.Sample("lottery_round_state", c.round_state);
  w.Family("lottery_agencies", "gauge", "Agencies taking part in the round (server.agencies).");
  w.Sample("lottery_agencies", c.agencies);
  std::uint32_t connected = 0;
  std::uint32_t finished = 0;
  for (std::uint32_t a = 1; a <= c.agencies; ++a) {
    connected += Load(m.agencies[a].connected) != 0;
    finished += Load(m.agencies[a].finished) != 0;
  }
  w.Family("lottery_agencies_connected", "gauge", "Agencies with a connection that said HELLO.");
  w.Sample("lottery_agencies_connected", connected);
  w.Family("lottery_agencies_finished", "gauge", "Agencies that said FINISHED this round.");
  w.Sample("lottery_agencies_finished", finished);
  w.Family("lottery_workers", "gauge", "Worker processes alive (one per connection).");
  w.Sample("lottery_workers", c.workers);
  w.Family("lottery_connections_accepted_total", "counter",
           "Connections accepted and handed to a worker.");
  w.Sample("lottery_connections_accepted_total", Load(m.connections_accepted));
  w.Family("lottery_connections_refused_total", "counter",
           "Connections refused before they became an agency's, by reason.");
  for (std::size_t r = 0; r < static_cast<std::size_t>(Refusal::kCount); ++r) {
    w.Sample("lottery_connections_refused_total",
             fmt::format("reason=\"{}\"", RefusalName(static_cast<Refusal>(r))),
             Load(m.refused[r]));
  }
  // A table, one family a row: clang-format-14 would break each call after its
  // "(" (a lambda ending the arguments).
  // clang-format off
  w.PerAgency(m, c.agencies, "lottery_agency_connected", "gauge",
              "1 while a connection of the agency is served.",
              [](const AgencyMetrics& a) -> const auto& { return a.connected; });
  w.PerAgency(m, c.agencies, "lottery_agency_finished", "gauge",
              "1 once the agency said FINISHED this round.",
              [](const AgencyMetrics& a) -> const auto& { return a.finished; });
  w.PerAgency(m, c.agencies, "lottery_agency_round_bets", "gauge",
              "Bets of the agency stored this round, those recovered at start included.",
              [](const AgencyMetrics& a) -> const auto& { return a.round_bets; });
  w.PerAgency(m, c.agencies, "lottery_bets_stored_total", "counter",
              "Bets stored by this server process.",
              [](const AgencyMetrics& a) -> const auto& { return a.bets_stored; });
  w.PerAgency(m, c.agencies, "lottery_batches_stored_total", "counter",
              "Batches stored by this server process.",
              [](const AgencyMetrics& a) -> const auto& { return a.batches_stored; });
  w.PerAgency(m, c.agencies, "lottery_bets_rejected_total", "counter",
              "Bets in batches refused (invalid bet, sequence gap, replay, storage failure, "
              "betting closed).",
              [](const AgencyMetrics& a) -> const auto& { return a.bets_rejected; });
  w.PerAgency(m, c.agencies, "lottery_batches_rejected_total", "counter", "Batches refused.",
              [](const AgencyMetrics& a) -> const auto& { return a.batches_rejected; });
  // clang-format on
  w.Family("lottery_stored_bytes_total", "counter",
           "Bytes of rows appended to the bets file by this server process.");
  w.Sample("lottery_stored_bytes_total", Load(m.bytes_stored));
  w.Family("lottery_draw_state", "gauge", "The draw: 0 not yet, 1 running, 2 done.");
  w.Sample("lottery_draw_state", Load(m.draw_state));
  w.Family("lottery_draw_duration_seconds", "gauge",
           "How long the last draw took (reading the bets file to publishing the winners).");
  w.Sample("lottery_draw_duration_seconds", Seconds(Load(m.draw_duration_ns)));
  w.Histogram("lottery_fdatasync_duration_seconds",
              "fdatasync() calls of the bets file and the journal made to acknowledge batches "
              "(storage.sync = always), by duration.",
              m.fdatasync);
  w.Histogram("lottery_batch_ack_duration_seconds",
              "From a BETS frame read whole to its ACK written, durability included.", m.batch_ack);
  return out;
}

}  // namespace lottery
