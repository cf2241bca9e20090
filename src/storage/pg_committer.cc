#include "storage/pg_committer.h"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <map>
#include <memory>
#include <vector>

#include <fmt/format.h>

#include "common/exit_codes.h"
#include "common/log.h"
#include "common/signals.h"

namespace lottery {
namespace {

// Connections a committer takes off the listener per wake (AcceptAll).
constexpr int kMaxAcceptsPerWake = 16;

// A committer stops taking connections while the requests in its hands
// come to this many bytes: stores that large are worth a transaction of
// their own, and the ones left in the backlog go to the other committers,
// each on its own database session. Without it one committer took five
// agencies' stores of 512 KiB into one transaction, which one backend ran
// on one core while the other idled and the agencies waited.
constexpr std::size_t kGroupBytes = 256 * 1024;

// Buffers a committer keeps for the next requests' frames, so that a
// request of megabytes is not a fresh allocation (and its page faults)
// every time: a few, and no more bytes than two of the largest stores
// (PgBatchStore::Limits), whatever their number.
constexpr std::size_t kSpareFrames = 8;
constexpr std::size_t kSpareBytes = 8 << 20;

// A worker's connection; `in` holds at most one frame, and `expected` is
// its size once its length prefix is in (kPgFrameHeader before).
struct Client {
  UniqueFd fd;
  std::string in;
  std::size_t expected = kPgFrameHeader;
};

// A request taken off a client, and where its reply goes. `frame` holds
// the bytes that `request.rows` views; it lives on the heap so that the
// view survives moves of the Pending.
struct Pending {
  Client* client = nullptr;
  std::unique_ptr<std::string> frame;
  PgRequest request;
};

bool SameUser(int fd) {
  ucred peer{};
  socklen_t len = sizeof peer;
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 && peer.uid == ::geteuid();
}

PgReply ErrorReply(const Error& error) {
  PgReply reply;
  reply.status = error.kind == ErrorKind::kBusy ? kReplyBusy : kReplyFailed;
  reply.message = error.message;
  return reply;
}

bool IsFenced(const Error& error) {
  return error.kind == ErrorKind::kBusy && error.message.starts_with("fenced");
}

// The committer's state: its session, its clients, and why it must stop.
class Committer {
 public:
  Committer(const PgCommitterOptions& options, PgSession session, int listener, int signal_fd)
      : options_(options), session_(std::move(session)), listener_(listener), signals_(signal_fd) {}

  int Serve();

 private:
  void AcceptAll();
  // The bytes of the requests in hand (read or announced by their prefix).
  std::size_t BytesInHand() const;
  // Reads what a client sent, up to the end of its frame and no further
  // (the next request waits in the socket until this one is taken); false
  // when it hung up or broke the format.
  bool ReadFrom(Client& client);
  // Takes `client`'s whole frame, or returns nullptr while it is partial.
  std::unique_ptr<std::string> TakeFrame(Client& client);
  // Returns the frames of answered requests for later ones.
  void Recycle(std::vector<Pending>& requests);
  // Takes every whole request off the clients.
  std::vector<Pending> TakeRequests();
  void Run(std::vector<Pending>& requests);
  void RunStores(std::vector<Pending*>& stores);
  void RunFinished(std::vector<Pending*>& finished);
  PgReply RunOne(const PgRequest& r);
  void Reply(Client& client, PgRequestKind kind, const PgReply& reply);
  void Judge(const Error& error);

  const PgCommitterOptions& options_;
  PgSession session_;
  int listener_;
  int signals_;
  std::map<int, Client> clients_;
  std::vector<std::string> spare_;
  int exit_code_ = -1;  // >= 0: stop with it
};

int Committer::Serve() {
  while (exit_code_ < 0) {
    // poll() skips a negative descriptor: the listener waits while the
    // committer's hands are full.
    const int listener = BytesInHand() < kGroupBytes ? listener_ : -1;
    std::vector<pollfd> fds = {{signals_, POLLIN, 0}, {listener, POLLIN, 0}};
    for (auto& [fd, c] : clients_) fds.push_back({fd, POLLIN, 0});
    if (::poll(fds.data(), fds.size(), -1) < 0 && errno != EINTR) return kExitOsErr;
    if (fds[0].revents & POLLIN) return kExitOk;
    if (fds[1].revents & POLLIN) AcceptAll();
    for (std::size_t i = 2; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = clients_.find(fds[i].fd);
      if (it != clients_.end() && !ReadFrom(it->second)) clients_.erase(it);
    }
    std::vector<Pending> requests = TakeRequests();
    if (!requests.empty()) Run(requests);
    Recycle(requests);
  }
  return exit_code_;
}

void Committer::AcceptAll() {
  // A few at a time: the connections left in the backlog go to the other
  // committers, and one transaction never grows to hundreds of agencies'
  // batches that all wait for its COMMIT.
  for (int accepted = 0; accepted < kMaxAcceptsPerWake && BytesInHand() < kGroupBytes; ++accepted) {
    int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) return;
    UniqueFd client(fd);
    if (!SameUser(fd)) continue;  // only the server's own processes
    // Read now: the length prefix says how much this request weighs.
    // A buffer of an earlier request: each connection carries one request,
    // so its frame is read into recycled memory.
    std::string buffer;
    if (!spare_.empty()) {
      buffer = std::move(spare_.back());
      spare_.pop_back();
    }
    Client& added = clients_[fd] = Client{std::move(client), std::move(buffer)};
    if (!ReadFrom(added)) clients_.erase(fd);
  }
}

std::size_t Committer::BytesInHand() const {
  std::size_t bytes = 0;
  for (const auto& [fd, client] : clients_) bytes += std::max(client.expected, client.in.size());
  return bytes;
}

bool Committer::ReadFrom(Client& client) {
  while (client.in.size() < client.expected) {
    const std::size_t have = client.in.size();
    ssize_t n = 0;
    // Straight into the frame: no bounce buffer, no zero-fill.
    client.in.resize_and_overwrite(client.expected, [&](char* p, std::size_t want) {
      n = ::recv(client.fd.get(), p + have, want - have, 0);
      return have + static_cast<std::size_t>(std::max<ssize_t>(n, 0));
    });
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    if (client.in.size() == kPgFrameHeader && client.expected == kPgFrameHeader) {
      auto length = PgFrameLength(client.in);
      if (!length || !*length) return false;
      client.expected = **length;
      client.in.reserve(client.expected);
    }
  }
  return true;
}

std::unique_ptr<std::string> Committer::TakeFrame(Client& client) {
  if (client.expected == kPgFrameHeader || client.in.size() < client.expected) return nullptr;
  auto frame = std::make_unique<std::string>(std::move(client.in));
  client.in.clear();
  client.expected = kPgFrameHeader;
  return frame;
}

void Committer::Recycle(std::vector<Pending>& requests) {
  std::size_t kept = 0;
  for (const std::string& s : spare_) kept += s.capacity();
  for (Pending& p : requests) {
    if (spare_.size() >= kSpareFrames) return;
    if (kept + p.frame->capacity() > kSpareBytes) continue;
    kept += p.frame->capacity();
    p.frame->clear();
    spare_.push_back(std::move(*p.frame));
  }
}

std::vector<Pending> Committer::TakeRequests() {
  std::vector<Pending> out;
  std::vector<int> broken;
  for (auto& [fd, client] : clients_) {
    std::unique_ptr<std::string> frame = TakeFrame(client);
    if (!frame) continue;
    auto request = DecodePgRequest(*frame);
    if (!request) {
      broken.push_back(fd);
      continue;
    }
    out.push_back(Pending{&client, std::move(frame), std::move(*request)});
  }
  for (int fd : broken) {
    Log(LogLevel::kWarning, "committer", Outcome::kFail,
        "index: {} | error: a client broke the committer format; dropped", options_.index);
    clients_.erase(fd);
  }
  return out;
}

void Committer::Run(std::vector<Pending>& requests) {
  std::vector<Pending*> stores;
  std::vector<Pending*> finished;
  for (Pending& p : requests) {
    if (p.request.kind == PgRequestKind::kStore) {
      stores.push_back(&p);
    } else if (p.request.kind == PgRequestKind::kFinished) {
      finished.push_back(&p);
    } else {
      Reply(*p.client, p.request.kind, RunOne(p.request));
    }
  }
  if (!stores.empty()) RunStores(stores);
  if (!finished.empty()) RunFinished(finished);
}

void Committer::RunFinished(std::vector<Pending*>& finished) {
  // One transaction (one commit) for the FINISHED of every agency that
  // arrived together: 1,000 agencies finishing are not 1,000 commits.
  std::map<std::uint64_t, std::vector<Pending*>> by_round;
  for (Pending* p : finished) by_round[p->request.round].push_back(p);
  for (auto& [round, group] : by_round) {
    std::vector<std::uint32_t> agencies;
    for (Pending* p : group) agencies.push_back(p->request.agency);
    auto yes = RecordPgFinishedAll(session_, options_.epoch, round, agencies);
    PgReply reply = yes ? PgReply{} : ErrorReply(yes.error());
    reply.yes = yes && *yes;
    for (Pending* p : group) Reply(*p->client, PgRequestKind::kFinished, reply);
    if (!yes) Judge(yes.error());
  }
}

void Committer::RunStores(std::vector<Pending*>& stores) {
  // One transaction per round among them (a round opened meanwhile).
  std::map<std::uint64_t, std::vector<Pending*>> by_round;
  for (Pending* p : stores) by_round[p->request.round].push_back(p);
  for (auto& [round, group] : by_round) {
    std::vector<PgBatchGroup> groups;
    for (Pending* p : group) {
      const PgRequest& r = p->request;
      groups.push_back(PgBatchGroup{r.agency, r.prev_seq, r.first_position, r.rows, r.batches});
    }
    auto stored = StorePgBatches(session_, options_.epoch, round, groups);
    if (!stored && stored.error().kind == ErrorKind::kInternal && group.size() > 1) {
      // One worker's group does not follow what is stored: the others
      // must not fail with it.
      for (Pending* p : group) {
        std::vector<Pending*> alone = {p};
        RunStores(alone);
      }
      continue;
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
      PgReply reply = stored ? PgReply{} : ErrorReply(stored.error());
      if (stored) {
        reply.skipped = static_cast<std::uint32_t>((*stored)[i].skipped);
        reply.progress = (*stored)[i].progress;
      }
      Reply(*group[i]->client, PgRequestKind::kStore, reply);
    }
    if (!stored) Judge(stored.error());
  }
}

PgReply Committer::RunOne(const PgRequest& r) {
  PgReply reply;
  auto fail = [&](const Error& e) {
    Judge(e);
    return ErrorReply(e);
  };
  switch (r.kind) {
    case PgRequestKind::kProgress: {
      auto p = ReadPgProgress(session_, r.round, r.agency);
      if (!p) return fail(p.error());
      reply.progress = *p;
      return reply;
    }
    case PgRequestKind::kClose: {
      auto yes = ClosePgBetting(session_, options_.epoch, r.round);
      if (!yes) return fail(yes.error());
      reply.yes = *yes;
      return reply;
    }
    case PgRequestKind::kDraw: {
      auto result =
          DrawPgRound(session_, options_.epoch, r.round, r.agencies, r.winning_number, r.drawn_at);
      if (!result) return fail(result.error());
      EncodeRoundResult(reply.result, *result);
      return reply;
    }
    case PgRequestKind::kOpen: {
      auto next = OpenNextPgRound(session_, options_.epoch, r.round, options_.winning_number);
      if (!next) return fail(next.error());
      reply.round = *next;
      return reply;
    }
    case PgRequestKind::kStore:
    case PgRequestKind::kFinished: break;
  }
  return ErrorReply(Error{ErrorKind::kInternal, "a grouped request outside its group", 0});
}

void Committer::Reply(Client& client, PgRequestKind kind, const PgReply& reply) {
  std::string frame;
  EncodePgReply(frame, kind, reply);
  // One request per connection (PgCommitterLink): the connection is done
  // whether the reply went out or the client was gone or stuck.
  SendAllWithin(client.fd.get(), frame);
  clients_.erase(client.fd.get());
}

void Committer::Judge(const Error& error) {
  if (IsFenced(error)) {
    Log(LogLevel::kError, "committer", Outcome::kFail,
        "index: {} | epoch: {} | error: {} | detail: another server holds the lease; this one "
        "commits nothing more",
        options_.index, options_.epoch, error.message);
    exit_code_ = kExitTempFail;
  } else if (!session_.alive()) {
    Log(LogLevel::kError, "committer", Outcome::kFail, "index: {} | error: session lost: {}",
        options_.index, error.message);
    exit_code_ = kExitUnavailable;
  }
}

}  // namespace

int RunPgCommitter(const PgCommitterOptions& options, int listener) {
  auto signals = SignalFd::Create({SIGTERM, SIGINT});
  if (!signals) return kExitOsErr;
  auto session = PgSession::Connect(options.dsn, fmt::format("lottery-committer-{}", options.index),
                                    std::chrono::seconds(10));
  if (!session) {
    Log(LogLevel::kError, "committer", Outcome::kFail, "index: {} | error: {}", options.index,
        session.error().message);
    return session.error().kind == ErrorKind::kConfig ? kExitConfig : kExitUnavailable;
  }
  Log(LogLevel::kDebug, "committer", Outcome::kSuccess, "index: {} | database: {} | epoch: {}",
      options.index, session->Describe(), options.epoch);
  Committer committer(options, std::move(*session), listener, signals->fd());
  return committer.Serve();
}

}  // namespace lottery
