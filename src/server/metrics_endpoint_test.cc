#include "server/metrics_endpoint.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>
#include <thread>

#include "common/net.h"

namespace lottery {
namespace {

std::string Render() { return "lottery_round 1\n"; }

// Runs the endpoint's poll loop until `done` or `limit` passes.
template <typename Done>
void Pump(MetricsEndpoint& endpoint, Done done,
          std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
  const auto until = std::chrono::steady_clock::now() + limit;
  while (!done() && std::chrono::steady_clock::now() < until) {
    std::vector<pollfd> fds;
    endpoint.AddPollFds(fds);
    ::poll(fds.data(), fds.size(), 20);
    endpoint.OnPoll(fds, 0, Render);
  }
}

UniqueFd Connect(const MetricsEndpoint& endpoint) {
  auto hp = ParseHostPort(endpoint.description());
  REQUIRE(hp);
  auto fd = ConnectTcp(*hp, std::chrono::milliseconds(1000));
  REQUIRE(fd);
  return std::move(*fd);
}

// Reads until the peer closes or nothing is there (non-blocking poll).
bool ReadAvailable(int fd, std::string& into) {
  char buf[4096];
  ssize_t n = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
  if (n > 0) into.append(buf, static_cast<std::size_t>(n));
  // A reset too: closing with a trickled byte unread sends RST, not FIN.
  return n == 0 || (n < 0 && errno == ECONNRESET);
}

}  // namespace

TEST_CASE("answers: 200 for /metrics, 404 elsewhere, 405 for other methods, 400 for garbage") {
  CHECK(AnswerMetricsRequest("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", Render)
            .starts_with("HTTP/1.1 200 OK\r\n"));
  const std::string ok = AnswerMetricsRequest("GET /metrics?x=1 HTTP/1.0\r\n\r\n", Render);
  CHECK(ok.find("Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n") != std::string::npos);
  CHECK(ok.find("Content-Length: 16\r\n") != std::string::npos);
  CHECK(ok.ends_with("\r\n\r\nlottery_round 1\n"));
  const std::string head = AnswerMetricsRequest("HEAD /metrics HTTP/1.1\r\n\r\n", Render);
  CHECK(
      head.ends_with("Content-Length: 16\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n"));
  CHECK(AnswerMetricsRequest("GET /other HTTP/1.1\r\n\r\n", Render).starts_with("HTTP/1.1 404"));
  const std::string post = AnswerMetricsRequest("POST /metrics HTTP/1.1\r\n\r\n", Render);
  CHECK(post.starts_with("HTTP/1.1 405"));
  CHECK(post.find("Allow: GET, HEAD\r\n") != std::string::npos);
  CHECK(AnswerMetricsRequest("\x01\x02garbage\r\n\r\n", Render).starts_with("HTTP/1.1 400"));
  CHECK(AnswerMetricsRequest("GET /metrics\r\n\r\n", Render).starts_with("HTTP/1.1 400"));
}

TEST_CASE("a scrape is served from the poll loop, and a silent client does not hold others up") {
  auto endpoint = MetricsEndpoint::Open("127.0.0.1:0");
  REQUIRE(endpoint);
  UniqueFd silent = Connect(*endpoint);  // connects and says nothing
  UniqueFd client = Connect(*endpoint);
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
  // Sent in two parts: the endpoint must wait for the whole head.
  REQUIRE(::send(client.get(), request.data(), 10, 0) == 10);
  Pump(
      *endpoint, [] { return false; }, std::chrono::milliseconds(200));
  REQUIRE(::send(client.get(), request.data() + 10, request.size() - 10, 0) ==
          static_cast<ssize_t>(request.size() - 10));
  std::string response;
  bool closed = false;
  Pump(*endpoint, [&] { return (closed = ReadAvailable(client.get(), response)); });
  CHECK(closed);
  CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(response.ends_with("lottery_round 1\n"));
  // The silent one is still open (its deadline is seconds away).
  REQUIRE(endpoint->NextDeadline().has_value());
}

TEST_CASE("an oversized request is answered 431 and closed") {
  auto endpoint = MetricsEndpoint::Open("127.0.0.1:0");
  REQUIRE(endpoint);
  UniqueFd client = Connect(*endpoint);
  std::string big =
      "GET /metrics HTTP/1.1\r\nX: " + std::string(MetricsEndpoint::kMaxRequestBytes, 'a');
  REQUIRE(::send(client.get(), big.data(), big.size(), 0) == static_cast<ssize_t>(big.size()));
  std::string response;
  bool closed = false;
  Pump(*endpoint, [&] { return (closed = ReadAvailable(client.get(), response)); });
  CHECK(closed);
  CHECK(response.starts_with("HTTP/1.1 431"));
}

// Sends a whole scrape request on `fd` and pumps until the answer is in.
std::string Scrape(MetricsEndpoint& endpoint, int fd, std::chrono::milliseconds limit) {
  const std::string request = "GET /metrics HTTP/1.1\r\nHost: test\r\n\r\n";
  REQUIRE(::send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  std::string response;
  Pump(
      endpoint, [&] { return ReadAvailable(fd, response); }, limit);
  return response;
}

TEST_CASE("eight silent and eight trickling clients do not keep a scrape out") {
  auto endpoint = MetricsEndpoint::Open("127.0.0.1:0");
  REQUIRE(endpoint);
  std::vector<UniqueFd> stalled;
  for (int i = 0; i < 16; ++i) {
    stalled.push_back(Connect(*endpoint));
    if (i % 2 == 1)
      REQUIRE(::send(stalled.back().get(), "G", 1, 0) == 1);  // a trickler's first byte
  }
  Pump(
      *endpoint, [] { return false; }, std::chrono::milliseconds(100));
  UniqueFd client = Connect(*endpoint);
  const auto start = std::chrono::steady_clock::now();
  const std::string response = Scrape(*endpoint, client.get(), std::chrono::milliseconds(1000));
  CHECK(response.starts_with("HTTP/1.1 200 OK\r\n"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::milliseconds(1000));
}

TEST_CASE("when every slot waits for a request, a new connection takes the oldest one's slot") {
  auto endpoint = MetricsEndpoint::Open("127.0.0.1:0");
  REQUIRE(endpoint);
  std::vector<UniqueFd> held;
  for (std::size_t i = 0; i < MetricsEndpoint::kMaxScrapes; ++i) {
    held.push_back(Connect(*endpoint));
    Pump(
        *endpoint, [] { return false; }, std::chrono::milliseconds(1));  // accepted in this order
  }
  Pump(
      *endpoint, [] { return false; }, std::chrono::milliseconds(100));
  UniqueFd client = Connect(*endpoint);
  CHECK(Scrape(*endpoint, client.get(), std::chrono::milliseconds(1000))
            .starts_with("HTTP/1.1 200 OK\r\n"));
  std::string ignored;
  CHECK(ReadAvailable(held.front().get(), ignored));       // the oldest was closed
  CHECK_FALSE(ReadAvailable(held.back().get(), ignored));  // the newest still waits
}

TEST_CASE("a client that trickles its request is closed at kRequestDeadline") {
  auto endpoint = MetricsEndpoint::Open("127.0.0.1:0");
  REQUIRE(endpoint);
  UniqueFd trickler = Connect(*endpoint);
  const auto start = std::chrono::steady_clock::now();
  auto last = start - std::chrono::seconds(1);
  std::string response;
  bool closed = false;
  Pump(
      *endpoint,
      [&] {
        if (std::chrono::steady_clock::now() - last >= std::chrono::milliseconds(300)) {
          ::send(trickler.get(), "G", 1, MSG_NOSIGNAL);  // one byte of a request that never ends
          last = std::chrono::steady_clock::now();
        }
        return (closed = ReadAvailable(trickler.get(), response));
      },
      MetricsEndpoint::kRequestDeadline + std::chrono::milliseconds(1500));
  const auto took = std::chrono::steady_clock::now() - start;
  CHECK(closed);
  CHECK(response.empty());
  CHECK(took >= MetricsEndpoint::kRequestDeadline - std::chrono::milliseconds(50));
  CHECK(took < MetricsEndpoint::kRequestDeadline + std::chrono::milliseconds(1000));
  CHECK_FALSE(endpoint->NextDeadline().has_value());
}

}  // namespace lottery
