#include "server/metrics_exposition.h"

#include <doctest/doctest.h>

#include <memory>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "common/test_util.h"

namespace lottery {
namespace {

bool HasLine(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos || text.starts_with(line + "\n");
}

// The metric names in the first column of docs/METRICS.md's table.
std::set<std::string> DocumentedNames() {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "METRICS.md");
  std::set<std::string> names;
  std::regex row(R"(^\| `(lottery_[a-z_]+)` \|)");
  std::istringstream in(doc);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch m;
    if (std::regex_search(line, m, row)) names.insert(m[1]);
  }
  return names;
}

MetricsContext Context(std::uint32_t agencies) {
  MetricsContext c;
  c.agencies = agencies;
  c.workers = 4;
  c.version = "9.9.9";
  c.tls_mode = "required";
  c.sync_mode = "always";
  return c;
}

}  // namespace

TEST_CASE("counters, gauges and labels as the exposition format writes them") {
  auto m = std::make_unique<ServerMetrics>();
  m->round.store(3);
  m->connections_accepted.store(12);
  m->Refuse(Refusal::kMaxPending);
  m->Refuse(Refusal::kMaxPending);
  m->Refuse(Refusal::kNotAuthorized);
  m->agencies[2].bets_stored.store(700);
  m->agencies[2].batches_stored.store(7);
  m->agencies[2].round_bets.store(900);
  m->agencies[1].connected.store(1);
  m->agencies[2].connected.store(1);
  m->agencies[2].finished.store(1);
  m->agencies[3].bets_rejected.store(100);
  m->agencies[3].batches_rejected.store(1);
  m->bytes_stored.store(4242);
  m->draw_state.store(2);
  m->draw_duration_ns.store(1500000);
  MetricsContext context = Context(3);
  context.round_state = 3;
  const std::string text = RenderMetrics(*m, context);
  CHECK(HasLine(text, R"(lottery_build_info{version="9.9.9",tls="required",sync="always"} 1)"));
  CHECK(HasLine(text, "lottery_round 3"));
  CHECK(HasLine(text, "lottery_round_state 3"));
  CHECK(HasLine(text, "# TYPE lottery_round_state gauge"));
  CHECK(HasLine(text, "lottery_agencies 3"));
  CHECK(HasLine(text, "lottery_agencies_connected 2"));
  CHECK(HasLine(text, "lottery_agencies_finished 1"));
  CHECK(HasLine(text, "lottery_workers 4"));
  CHECK(HasLine(text, "lottery_connections_accepted_total 12"));
  CHECK(HasLine(text, R"(lottery_connections_refused_total{reason="max_pending"} 2)"));
  CHECK(HasLine(text, R"(lottery_connections_refused_total{reason="not_authorized"} 1)"));
  CHECK(HasLine(text, R"(lottery_connections_refused_total{reason="max_connections"} 0)"));
  CHECK(HasLine(text, R"(lottery_bets_stored_total{agency="2"} 700)"));
  CHECK(HasLine(text, R"(lottery_batches_stored_total{agency="2"} 7)"));
  CHECK(HasLine(text, R"(lottery_agency_round_bets{agency="2"} 900)"));
  CHECK(HasLine(text, R"(lottery_bets_rejected_total{agency="3"} 100)"));
  CHECK(HasLine(text, R"(lottery_batches_rejected_total{agency="3"} 1)"));
  CHECK(HasLine(text, R"(lottery_agency_finished{agency="1"} 0)"));
  CHECK(HasLine(text, "lottery_stored_bytes_total 4242"));
  CHECK(HasLine(text, "lottery_draw_state 2"));
  CHECK(HasLine(text, "lottery_draw_duration_seconds 0.0015"));
  CHECK(HasLine(text, "# TYPE lottery_bets_stored_total counter"));
  CHECK(HasLine(text, "# TYPE lottery_round gauge"));
  // Only agencies 1..3 are written.
  CHECK(text.find(R"({agency="4"})") == std::string::npos);
  CHECK(text.find(R"({agency="0"})") == std::string::npos);
}

TEST_CASE("histograms are cumulative, end at +Inf with the count, and sum in seconds") {
  auto m = std::make_unique<ServerMetrics>();
  m->batch_ack.Record(std::chrono::microseconds(40));  // le 5e-05
  m->batch_ack.Record(std::chrono::microseconds(50));  // le 5e-05 (a bound is inclusive)
  m->batch_ack.Record(std::chrono::milliseconds(3));   // le 0.005
  m->batch_ack.Record(std::chrono::seconds(60));       // +Inf only
  const std::string text = RenderMetrics(*m, Context(1));
  CHECK(HasLine(text, "# TYPE lottery_batch_ack_duration_seconds histogram"));
  CHECK(HasLine(text, R"(lottery_batch_ack_duration_seconds_bucket{le="5e-05"} 2)"));
  CHECK(HasLine(text, R"(lottery_batch_ack_duration_seconds_bucket{le="0.0025"} 2)"));
  CHECK(HasLine(text, R"(lottery_batch_ack_duration_seconds_bucket{le="0.005"} 3)"));
  CHECK(HasLine(text, R"(lottery_batch_ack_duration_seconds_bucket{le="10"} 3)"));
  CHECK(HasLine(text, R"(lottery_batch_ack_duration_seconds_bucket{le="+Inf"} 4)"));
  CHECK(HasLine(text, "lottery_batch_ack_duration_seconds_count 4"));
  CHECK(HasLine(text, "lottery_batch_ack_duration_seconds_sum 60.00309"));
  CHECK(HasLine(text, R"(lottery_fdatasync_duration_seconds_bucket{le="+Inf"} 0)"));
}

TEST_CASE(
    "every family written is documented in docs/METRICS.md, and every documented one written") {
  auto m = std::make_unique<ServerMetrics>();
  const std::string text = RenderMetrics(*m, Context(2));
  std::set<std::string> written;
  std::regex type_line(R"(^# TYPE (\S+) (counter|gauge|histogram)$)");
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    std::smatch match;
    if (std::regex_match(line, match, type_line)) written.insert(match[1]);
  }
  const std::set<std::string> documented = DocumentedNames();
  CHECK(written.size() >= 20);
  CHECK(written == documented);
}

}  // namespace lottery
