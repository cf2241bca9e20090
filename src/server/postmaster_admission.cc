// The parent's admission of a new connection (postmaster.h): the room
// for unidentified connections, eviction, refusal and their rate-limited log.
#include <signal.h>
#include <sys/socket.h>

#include <vector>

#include <fmt/format.h>

#include "common/log.h"
#include "server/postmaster.h"
#include "wire/protocol.h"

namespace lottery {

bool Postmaster::Admit(UniqueFd& connection, const std::string& peer) {
  // Connections that have not introduced themselves cannot keep an agency
  // out: the oldest of them is evicted for the new one (server/pending_room.h).
  const std::vector<pid_t> introduced = ClaimedSlotOwners(shared_.state());
  const RoomLimits limits{static_cast<std::size_t>(config_.EffectiveMaxPending()),
                          static_cast<std::size_t>(config_.max_pending_per_source),
                          static_cast<std::size_t>(config_.EffectiveMaxConnections())};
  for (int tries = 0; tries < 4; ++tries) {
    Admission a = room_.Admit(peer, introduced, workers_.size(), limits);
    if (a.kind == Admission::kAccept) return true;
    if (a.kind == Admission::kRefuse) break;
    // Under the shared lock: a worker that claimed its slot meanwhile is left alone.
    room_.MarkEvicted(a.victim);
    if (!SignalIfUnclaimed(shared_.state(), a.victim, SIGKILL)) continue;
    shared_.state().metrics.Refuse(Refusal::kEvicted);
    ++evicted_unlogged_;
    last_eviction_reason_ = AdmissionReasonName(a.reason);
    if (Clock::now() >= next_refusal_log_) LogRefusals(Clock::now());
    if (a.reason != Admission::kMaxConnections) return true;
    break;
  }
  Refuse(std::move(connection), peer, Refusal::kMaxConnections,
         fmt::format("the server is serving its limit of {} connections "
                     "(server.max_connections); retry later",
                     config_.EffectiveMaxConnections()));
  return false;
}

void Postmaster::Refuse(UniqueFd connection, const std::string& peer, Refusal reason,
                        std::string why) {
  shared_.state().metrics.Refuse(reason);
  // Answered by the parent itself, without a worker and without waiting:
  // a peer that does not read the reply only loses the reply.
  std::string frame;
  EncodeError(frame, ErrorReply{ErrorCode::kTooManyConnections, kNoBetIndex, std::move(why)});
  (void)::send(connection.get(), frame.data(), frame.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ++refused_unlogged_;
  last_refused_peer_ = peer;
  auto now = Clock::now();
  if (now >= next_refusal_log_) LogRefusals(now);
}

void Postmaster::LogRefusals(Clock::time_point now) {
  if (refused_unlogged_ > 0) {
    Log(LogLevel::kWarning, "accept", Outcome::kFail,
        "ip: {} | error: too many connections | limit: {} | pending_limit: {} | refused: {}",
        last_refused_peer_, config_.EffectiveMaxConnections(), config_.EffectiveMaxPending(),
        refused_unlogged_);
  }
  if (evicted_unlogged_ > 0) {
    Log(LogLevel::kWarning, "evict", Outcome::kSuccess,
        "reason: {} | evicted: {} | pending_limit: {} | per_source_limit: {} | detail: oldest "
        "connections that had not said HELLO, closed for newer ones",
        last_eviction_reason_, evicted_unlogged_, config_.EffectiveMaxPending(),
        config_.max_pending_per_source);
  }
  refused_unlogged_ = 0;
  evicted_unlogged_ = 0;
  next_refusal_log_ = now + std::chrono::seconds(1);
}

}  // namespace lottery
