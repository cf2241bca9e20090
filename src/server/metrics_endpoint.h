// MetricsEndpoint serves GET /metrics over HTTP/1.x on server.metrics_address
// from inside the parent's poll loop. Every socket is non-blocking, each
// scrape connection has a short deadline for its request and a bounded
// request, and at most kMaxScrapes are served at once: when all are taken,
// a new connection takes the slot of the oldest one still waiting for its
// request. So slow or silent clients cost the parent a few descriptors,
// never keep a real scraper out, and never delay an accept of the lottery's
// own listener.
//
// Hand-written rather than an HTTP library: the ones packaged for Debian
// (civetweb under prometheus-cpp, for one) run threads, and a parent that
// fork()s a worker per connection must stay single-threaded.
//
// Owns its listening socket and the scrape connections. The parent's
// workers must drop it after fork() (Close()).
#pragma once

#include <poll.h>

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/net.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

class MetricsEndpoint {
 public:
  using Clock = std::chrono::steady_clock;
  using Render = std::function<std::string()>;

  static constexpr std::size_t kMaxScrapes = 64;
  static constexpr std::size_t kMaxRequestBytes = 8192;
  // A scraper sends its request at once: one that has not within this long
  // (silent, or trickling) is closed.
  static constexpr std::chrono::seconds kRequestDeadline{2};
  // The whole scrape, the answer's writing included.
  static constexpr std::chrono::seconds kScrapeDeadline{5};

  // Listens on "HOST:PORT" (port 0: any free port).
  static Result<MetricsEndpoint> Open(std::string_view address);

  MetricsEndpoint(MetricsEndpoint&&) = default;
  MetricsEndpoint& operator=(MetricsEndpoint&&) = default;

  // "127.0.0.1:9464", with the port actually bound.
  const std::string& description() const { return description_; }

  // Appends the descriptors to poll; OnPoll takes the same entries back.
  void AddPollFds(std::vector<pollfd>& fds) const;
  // Serves what poll() reported on the entries AddPollFds added (starting at
  // `first`), and drops connections past their deadline. `render` makes the
  // body of GET /metrics.
  void OnPoll(const std::vector<pollfd>& fds, std::size_t first, const Render& render);
  // When the earliest scrape connection expires (none: nullopt).
  std::optional<Clock::time_point> NextDeadline() const;

  // In a forked worker: closes every descriptor without touching the peers.
  void Close();

 private:
  struct Scrape {
    UniqueFd fd;
    Clock::time_point accepted;
    Clock::time_point deadline;  // accepted + kRequestDeadline, then + kScrapeDeadline
    std::string request;
    std::string response;  // empty until the request is whole
    std::size_t sent = 0;
  };

  MetricsEndpoint(UniqueFd listener, std::string description)
      : listener_(std::move(listener)), description_(std::move(description)) {}

  void AcceptAll();
  // Closes the oldest connection still waiting for its request; false when
  // every one is being answered.
  bool EvictOldestWaiting();
  // Returns false when the connection is done (answered, failed or closed).
  bool Read(Scrape& s, const Render& render);
  bool Write(Scrape& s);

  UniqueFd listener_;
  std::string description_;
  std::vector<Scrape> scrapes_;
};

// "HOST:PORT" as server.metrics_address takes it: port 0 means any free
// port (the log and description() say which).
Result<HostPort> ParseMetricsAddress(std::string_view address);

// The HTTP response to `request` (a whole request head): 200 with `render()`
// for GET or HEAD /metrics, a short page for /, else 404, 405 or 400.
std::string AnswerMetricsRequest(std::string_view request, const MetricsEndpoint::Render& render);

}  // namespace lottery
