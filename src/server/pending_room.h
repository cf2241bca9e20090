// PendingRoom is the parent's record of the connections it accepted: the
// order they came in and their source address. Contract: it decides, for a
// new connection, whether it fits, and if not which worker to evict for it,
// so that no stranger can keep an agency out:
//  - a connection is "unidentified" while its worker holds no agency slot
//    (the caller passes the slot owners) and has not been evicted;
//  - once the room is three-quarters full, a source at
//    server.max_pending_per_source unidentified connections loses its own
//    oldest one (below that, agencies sharing an address connect freely);
//  - a full room (server.max_pending) loses its oldest unidentified one;
//  - at server.max_connections live workers (a hard bound), the oldest
//    unidentified one is evicted AND the new one refused: the next try finds
//    room; when every live worker is an agency's, nothing is evicted.
// An agency's connection is unidentified only for its handshake and HELLO
// (milliseconds), so it is never the oldest for long: connections that are
// reopened as fast as they are dropped evict each other. Pure logic: the
// caller signals the victim and accounts for it.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>

namespace lottery {

struct RoomLimits {
  std::size_t max_pending = 0;      // unidentified connections at once
  std::size_t max_per_source = 0;   // unidentified connections of one address
  std::size_t max_connections = 0;  // live workers
};

struct Admission {
  enum Kind { kAccept, kEvict, kRefuse };
  enum Reason { kNone, kPerSource, kMaxPending, kMaxConnections };
  Kind kind = kAccept;
  Reason reason = kNone;
  // Set for kEvict: evict it, then accept the new one (refuse it when the
  // reason is kMaxConnections).
  pid_t victim = 0;
};

const char* AdmissionReasonName(Admission::Reason reason);

class PendingRoom {
 public:
  void Add(pid_t pid, std::string source);
  // The worker was reaped.
  void Forget(pid_t pid);
  // The worker was signalled to go: it no longer counts, nor can be chosen.
  void MarkEvicted(pid_t pid);
  bool WasEvicted(pid_t pid) const;

  // What to do with a new connection from `source`, with `live` workers of
  // which `introduced` hold an agency slot.
  Admission Admit(const std::string& source, std::span<const pid_t> introduced, std::size_t live,
                  const RoomLimits& limits) const;

 private:
  struct Entry {
    std::uint64_t order = 0;
    std::string source;
    bool evicted = false;
  };
  std::map<pid_t, Entry> entries_;
  std::uint64_t next_order_ = 0;
};

}  // namespace lottery
