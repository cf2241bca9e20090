#include "storage/group_commit.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cerrno>

namespace lottery {
namespace {

// RAII lock on SyncState::mutex. A holder that died mid-fdatasync leaves
// nothing to repair: durable_end only moves after a sync succeeded.
class SyncLock {
 public:
  explicit SyncLock(SyncState& sync) : sync_(sync) {
    if (pthread_mutex_lock(&sync_.mutex) == EOWNERDEAD) pthread_mutex_consistent(&sync_.mutex);
  }
  ~SyncLock() { pthread_mutex_unlock(&sync_.mutex); }
  SyncLock(const SyncLock&) = delete;
  SyncLock& operator=(const SyncLock&) = delete;

 private:
  SyncState& sync_;
};

}  // namespace

void AdvanceWrittenEnd(SyncState& sync, std::uint64_t end) {
  std::uint64_t seen = sync.written_end.load(std::memory_order_relaxed);
  while (seen < end && !sync.written_end.compare_exchange_weak(seen, end,
                                                               std::memory_order_release)) {
  }
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
  SyncLock lock(sync);
  if (sync.durable_end >= end) {
    ++sync.covered;
    return Ok();
  }
  // Everything written so far is covered by this one sync, also the batches
  // of the writers now queueing behind this lock.
  const std::uint64_t target = sync.written_end.load(std::memory_order_acquire);
  if (TimedFdatasync(data_fd, fdatasync_times) != 0) return FailErrno("fdatasync " + path);
  if (TimedFdatasync(journal_fd, fdatasync_times) != 0) {
    return FailErrno("fdatasync " + path + ".journal");
  }
  ++sync.syncs;
  sync.durable_end = std::max(sync.durable_end, std::max(target, end));
  return Ok();
}

}  // namespace lottery
