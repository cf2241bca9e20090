#include "storage/group_commit.h"

#include <pthread.h>
#include <unistd.h>

#include <algorithm>
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

Status GroupCommit(SyncState& sync, int data_fd, int journal_fd, const std::string& path,
                   std::uint64_t end) {
  SyncLock lock(sync);
  if (sync.durable_end >= end) {
    ++sync.covered;
    return Ok();
  }
  // Everything written so far is covered by this one sync, also the batches
  // of the writers now queueing behind this lock.
  const std::uint64_t target = sync.written_end.load(std::memory_order_acquire);
  int rc;
  do {
    rc = ::fdatasync(data_fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return FailErrno("fdatasync " + path);
  do {
    rc = ::fdatasync(journal_fd);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return FailErrno("fdatasync " + path + ".journal");
  ++sync.syncs;
  sync.durable_end = std::max(sync.durable_end, std::max(target, end));
  return Ok();
}

}  // namespace lottery
