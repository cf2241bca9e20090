#include "server/pending_room.h"

#include <algorithm>
#include <utility>

namespace lottery {

const char* AdmissionReasonName(Admission::Reason reason) {
  switch (reason) {
    case Admission::kNone: return "none";
    case Admission::kPerSource: return "max_pending_per_source";
    case Admission::kMaxPending: return "max_pending";
    case Admission::kMaxConnections: return "max_connections";
  }
  return "unknown";
}

void PendingRoom::Add(pid_t pid, std::string source) {
  entries_[pid] = Entry{next_order_++, std::move(source), false};
}

void PendingRoom::Forget(pid_t pid) { entries_.erase(pid); }

void PendingRoom::MarkEvicted(pid_t pid) {
  if (auto it = entries_.find(pid); it != entries_.end()) it->second.evicted = true;
}

bool PendingRoom::WasEvicted(pid_t pid) const {
  auto it = entries_.find(pid);
  return it != entries_.end() && it->second.evicted;
}

Admission PendingRoom::Admit(const std::string& source, std::span<const pid_t> introduced,
                             std::size_t live, const RoomLimits& limits) const {
  std::size_t pending = 0;
  std::size_t from_source = 0;
  const Entry* oldest = nullptr;
  const Entry* oldest_of_source = nullptr;
  pid_t oldest_pid = 0;
  pid_t oldest_of_source_pid = 0;
  for (const auto& [pid, entry] : entries_) {
    if (entry.evicted || std::ranges::find(introduced, pid) != introduced.end()) continue;
    ++pending;
    if (oldest == nullptr || entry.order < oldest->order) {
      oldest = &entry;
      oldest_pid = pid;
    }
    if (entry.source != source) continue;
    ++from_source;
    if (oldest_of_source == nullptr || entry.order < oldest_of_source->order) {
      oldest_of_source = &entry;
      oldest_of_source_pid = pid;
    }
  }
  // max_connections is a hard bound on live workers: the oldest unidentified
  // one is evicted to make room for the next try, and the new one refused.
  if (live >= limits.max_connections) {
    if (oldest == nullptr) return {Admission::kRefuse, Admission::kMaxConnections, 0};
    return {Admission::kEvict, Admission::kMaxConnections, oldest_pid};
  }
  // The per-source cap applies only under pressure: agencies behind one
  // address (a NAT, a bench host) that connect at once must not evict each
  // other in a room that has space for all of them.
  const bool crowded = pending * 4 >= limits.max_pending * 3;
  if (crowded && limits.max_per_source > 0 && from_source >= limits.max_per_source) {
    return {Admission::kEvict, Admission::kPerSource, oldest_of_source_pid};
  }
  if (pending >= limits.max_pending && oldest != nullptr) {
    return {Admission::kEvict, Admission::kMaxPending, oldest_pid};
  }
  return {};
}

}  // namespace lottery
