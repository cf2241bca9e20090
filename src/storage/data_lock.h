// DataLock is one server instance's exclusive ownership of its bets file, in
// the spirit of PostgreSQL's postmaster.pid: an flock() on `<storage.path>
// .lock`, a file beside the bets file that holds the owner's pid for the
// message a second instance prints. The server takes it before it opens,
// creates, recovers or truncates anything, so two instances never write one
// bets file.
//
// The kernel releases the lock when the last descriptor of its open file is
// closed. Forked workers inherit the descriptor, so the lock outlives a
// parent killed with SIGKILL until its last worker exits: a restarted server
// waits for them (bounded) instead of writing beside them.
//
// The lock owns its descriptor. A lock file this start created is removed
// again by Release (a failed start leaves no file), and at a clean shutdown;
// a start that fails after Publish (recovery) releases with `remove`.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <functional>
#include <string>

#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

class DataLock {
 public:
  // The lock file of a bets file.
  static std::string PathFor(const std::string& bets_path);

  // Takes the lock without creating or touching the bets file. When a live
  // process owns it, fails at once with kBusy naming the file and the
  // owner's pid. When the owner named in the file is gone but the lock is
  // still held (its workers outlive it), waits up to `wait_for_orphans` for
  // them, calling `waiting` once; then fails with kBusy. Fails with kIo when
  // the lock file cannot be created or locked.
  static Result<DataLock> Acquire(const std::string& bets_path,
                                  std::chrono::milliseconds wait_for_orphans,
                                  const std::function<void(pid_t owner)>& waiting = {});

  DataLock(DataLock&& other) noexcept;
  DataLock& operator=(DataLock&&) = delete;
  DataLock(const DataLock&) = delete;
  ~DataLock();

  // Writes `pid` into the lock file: the owner other instances are told of.
  Status Publish(pid_t pid);

  // Releases the lock, first removing the lock file with LockFile::kRemove
  // or when this start created it and never published (a failed start).
  enum class LockFile { kKeep, kRemove };
  void Release(LockFile file);

  const std::string& path() const { return path_; }
  bool created() const { return created_; }

 private:
  DataLock(std::string path, UniqueFd fd, bool created)
      : path_(std::move(path)), fd_(std::move(fd)), created_(created) {}

  std::string path_;
  UniqueFd fd_;
  bool created_ = false;    // this start created the lock file
  bool published_ = false;  // Publish() wrote our pid
};

// The pid written in a lock file, or 0 when none can be read.
pid_t ReadLockOwner(const std::string& lock_path);

}  // namespace lottery
