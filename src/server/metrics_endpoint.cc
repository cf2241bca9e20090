#include "server/metrics_endpoint.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/log.h"
#include "common/net.h"
#include "server/metrics_exposition.h"

namespace lottery {
namespace {

// A HEAD request's answer carries the headers of a GET's and no body.
enum class Body { kSend, kOmit };

std::string Response(std::string_view status, std::string_view content_type, std::string_view body,
                     Body send) {
  std::string out = fmt::format(
      "HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n"
      "Cache-Control: no-store\r\n\r\n",
      status, content_type, body.size());
  if (send == Body::kSend) out.append(body);
  return out;
}

// Where the request head ends, if it is whole.
std::size_t HeadEnd(std::string_view request) {
  std::size_t crlf = request.find("\r\n\r\n");
  if (crlf != std::string_view::npos) return crlf + 4;
  std::size_t lf = request.find("\n\n");
  return lf != std::string_view::npos ? lf + 2 : std::string_view::npos;
}

}  // namespace

std::string AnswerMetricsRequest(std::string_view request, const MetricsEndpoint::Render& render) {
  constexpr std::string_view kText = "text/plain; charset=utf-8";
  const std::string_view line = request.substr(0, request.find_first_of("\r\n"));
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || !line.substr(sp2 + 1).starts_with("HTTP/1.")) {
    return Response("400 Bad Request", kText, "bad request\n", Body::kSend);
  }
  const std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  target = target.substr(0, target.find('?'));  // Prometheus may add parameters
  const bool head = method == "HEAD";
  const Body body = head ? Body::kOmit : Body::kSend;
  if (method != "GET" && !head) {
    std::string r = Response("405 Method Not Allowed", kText, "only GET and HEAD\n", Body::kSend);
    r.insert(r.find("\r\n") + 2, "Allow: GET, HEAD\r\n");
    return r;
  }
  if (target == "/metrics") return Response("200 OK", kMetricsContentType, render(), body);
  if (target == "/") {
    return Response("200 OK", kText, "lottery-server: metrics at /metrics\n", body);
  }
  return Response("404 Not Found", kText, "not found; metrics are at /metrics\n", body);
}

Result<HostPort> ParseMetricsAddress(std::string_view address) {
  if (!address.ends_with(":0")) return ParseHostPort(address);
  std::string any(address);
  any.back() = '1';  // ParseHostPort wants 1..65535
  auto hp = ParseHostPort(any);
  if (hp) hp->port = 0;
  return hp;
}

Result<MetricsEndpoint> MetricsEndpoint::Open(std::string_view address) {
  auto hp = ParseMetricsAddress(address);
  if (!hp) return std::unexpected(hp.error());
  auto fd = ListenTcp(hp->host, hp->port, 64);
  if (!fd) return std::unexpected(fd.error());
  if (::fcntl(fd->get(), F_SETFL, ::fcntl(fd->get(), F_GETFL) | O_NONBLOCK) != 0) {
    return FailErrno("fcntl O_NONBLOCK");
  }
  auto port = LocalPort(fd->get());
  if (!port) return std::unexpected(port.error());
  const bool v6 = hp->host.find(':') != std::string::npos;
  return MetricsEndpoint(std::move(*fd), v6 ? fmt::format("[{}]:{}", hp->host, *port)
                                            : fmt::format("{}:{}", hp->host, *port));
}

void MetricsEndpoint::AddPollFds(std::vector<pollfd>& fds) const {
  fds.push_back({listener_.get(), POLLIN, 0});
  for (const Scrape& s : scrapes_) {
    fds.push_back({s.fd.get(), static_cast<short>(s.response.empty() ? POLLIN : POLLOUT), 0});
  }
}

void MetricsEndpoint::OnPoll(const std::vector<pollfd>& fds, std::size_t first,
                             const Render& render) {
  const auto now = Clock::now();
  // The entries after the listener's are the scrapes as they were when
  // AddPollFds ran; none was added or removed since.
  for (std::size_t i = 0; i < scrapes_.size() && first + 1 + i < fds.size(); ++i) {
    Scrape& s = scrapes_[i];
    const short ev = fds[first + 1 + i].revents;
    bool keep = true;
    if (ev & (POLLIN | POLLHUP | POLLERR)) keep = s.response.empty() ? Read(s, render) : Write(s);
    else if (ev & POLLOUT) keep = Write(s);
    if (keep && now >= s.deadline) {
      Log(LogLevel::kDebug, "metrics", Outcome::kFail, "ip: {} | error: {} not done in {}s",
          PeerAddress(s.fd.get()), s.response.empty() ? "request" : "scrape",
          (s.response.empty() ? kRequestDeadline : kScrapeDeadline).count());
      keep = false;
    }
    if (!keep) s.fd.Reset();
  }
  std::erase_if(scrapes_, [](const Scrape& s) { return !s.fd.valid(); });
  if (first < fds.size() && (fds[first].revents & POLLIN)) AcceptAll();
}

std::optional<MetricsEndpoint::Clock::time_point> MetricsEndpoint::NextDeadline() const {
  std::optional<Clock::time_point> next;
  for (const Scrape& s : scrapes_) next = next ? std::min(*next, s.deadline) : s.deadline;
  return next;
}

void MetricsEndpoint::Close() {
  scrapes_.clear();
  listener_.Reset();
}

void MetricsEndpoint::AcceptAll() {
  // A bounded number per wake-up, so a flood of scrapers cannot keep the
  // parent here.
  for (int n = 0; n < 32; ++n) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd) return;  // EAGAIN (nothing left) or a transient error
    if (scrapes_.size() >= kMaxScrapes && !EvictOldestWaiting()) {
      Log(LogLevel::kDebug, "metrics", Outcome::kFail,
          "ip: {} | error: {} scrapes being answered already; closed", PeerAddress(fd.get()),
          kMaxScrapes);
      continue;  // closed by UniqueFd
    }
    const auto now = Clock::now();
    scrapes_.push_back(Scrape{std::move(fd), now, now + kRequestDeadline, {}, {}, 0});
  }
}

bool MetricsEndpoint::EvictOldestWaiting() {
  // The oldest waiter has had the longest to send a request a scraper sends
  // at once: it is the likeliest to be stalled, and the newcomer the likeliest
  // to be a scraper.
  auto oldest = scrapes_.end();
  for (auto it = scrapes_.begin(); it != scrapes_.end(); ++it) {
    if (it->response.empty() && (oldest == scrapes_.end() || it->accepted < oldest->accepted)) {
      oldest = it;
    }
  }
  if (oldest == scrapes_.end()) return false;
  Log(LogLevel::kDebug, "metrics", Outcome::kFail,
      "ip: {} | error: no request yet and all {} slots taken; closed for a newer connection",
      PeerAddress(oldest->fd.get()), kMaxScrapes);
  scrapes_.erase(oldest);
  return true;
}

bool MetricsEndpoint::Read(Scrape& s, const Render& render) {
  char buf[2048];
  while (true) {
    ssize_t n = ::recv(s.fd.get(), buf, sizeof buf, 0);
    if (n > 0) {
      s.request.append(buf, static_cast<std::size_t>(n));
      if (HeadEnd(s.request) != std::string::npos) break;
      if (s.request.size() > kMaxRequestBytes) {
        s.response = Response("431 Request Header Fields Too Large", "text/plain; charset=utf-8",
                              "request too large\n", Body::kSend);
        s.deadline = s.accepted + kScrapeDeadline;
        return Write(s);
      }
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // wait for more
    return false;  // closed or failed before a whole request
  }
  s.response = AnswerMetricsRequest(s.request, render);
  s.deadline = s.accepted + kScrapeDeadline;  // the request came in time: room to write
  return Write(s);
}

bool MetricsEndpoint::Write(Scrape& s) {
  while (s.sent < s.response.size()) {
    ssize_t n = ::send(s.fd.get(), s.response.data() + s.sent, s.response.size() - s.sent,
                       MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      s.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return true;  // POLLOUT next
    return false;
  }
  ::shutdown(s.fd.get(), SHUT_WR);
  return false;  // answered: closed by the caller
}

}  // namespace lottery
