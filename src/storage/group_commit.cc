#include "storage/group_commit.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>

namespace lottery {
namespace {

// A leader killed mid-fdatasync never clears `leader` itself: the parent
// clears it when it reaps the worker (ReleaseWorker), and until then, or for
// a leader no parent reaps, its waiters take over once it is gone (a zombie
// still answers kill()).
bool LeaderGone(pid_t leader) { return ::kill(leader, 0) != 0 && errno == ESRCH; }

// How often a waiter looks whether the leader died: only a dead leader makes
// a waiter sleep this long; a live one wakes it when done.
constexpr std::chrono::milliseconds kLeaderCheck{100};

}  // namespace

void AdvanceWrittenEnd(SyncState& sync, std::uint64_t end) {
  std::uint64_t seen = sync.written_end.load(std::memory_order_relaxed);
  while (seen < end &&
         !sync.written_end.compare_exchange_weak(seen, end, std::memory_order_release)) {}
}

int TimedFdatasync(int fd, SharedHistogram& times) {
  const auto started = std::chrono::steady_clock::now();
  int rc;
  do {
    rc = ::fdatasync(fd);
  } while (rc != 0 && errno == EINTR);
  const int saved = errno;
  times.Record(std::chrono::steady_clock::now() - started);
  errno = saved;
  return rc;
}

Status GroupCommit(SyncState& sync, int data_fd, int journal_fd, const std::string& path,
                   std::uint64_t end, SharedHistogram& fdatasync_times) {
  while (true) {
    std::uint32_t seen = 0;
    std::uint64_t target = 0;
    std::uint64_t generation = 0;
    bool lead = false;
    {
      SyncLock lock(sync);
      if (sync.durable_end.load(std::memory_order_relaxed) >= end) {
        ++sync.covered;
        return Ok();
      }
      if (sync.leader == 0 || LeaderGone(sync.leader)) {
        // Everything written so far is covered by this sync, also the
        // batches of the writers that wait for it.
        sync.leader = ::getpid();
        target = sync.written_end.load(std::memory_order_acquire);
        generation = sync.file_generation;
        lead = true;
      } else {
        seen = sync.completed.load(std::memory_order_relaxed);
      }
    }
    if (!lead) {
      // A sync is in flight: sleep until a leader finishes, then look again
      // (it may not have covered `end`, or it may have failed).
      FutexWait(sync.completed, seen, kLeaderCheck);
      continue;
    }
    Status synced = Ok();
    if (TimedFdatasync(data_fd, fdatasync_times) != 0) {
      synced = FailErrno("fdatasync " + path);
    } else if (TimedFdatasync(journal_fd, fdatasync_times) != 0) {
      synced = FailErrno("fdatasync " + path + ".journal");
    }
    {
      SyncLock lock(sync);
      sync.leader = 0;
      if (synced && generation == sync.file_generation) {
        ++sync.syncs;
        std::uint64_t durable =
            std::max(sync.durable_end.load(std::memory_order_relaxed), std::max(target, end));
        sync.durable_end.store(durable, std::memory_order_release);
      }
      sync.completed.fetch_add(1, std::memory_order_release);
    }
    FutexWakeAll(sync.completed);
    return synced;
  }
}

}  // namespace lottery
