// FileLock holds an exclusive flock() on a descriptor for its lifetime: the
// lock that serialises every append to the bets file and its journal.
// flock() excludes only between separate open()s of a file, which is why
// each worker opens the bets file itself. The descriptor must outlive the
// lock.
#pragma once

#include <sys/file.h>

#include <cerrno>

namespace lottery {

class FileLock {
 public:
  explicit FileLock(int fd) : fd_(fd) {
    int rc;
    do {
      rc = ::flock(fd_, LOCK_EX);
    } while (rc != 0 && errno == EINTR);
    ok_ = rc == 0;
  }
  ~FileLock() {
    if (ok_) ::flock(fd_, LOCK_UN);
  }
  // Whether this lock holds the flock of `fd`: the witness that functions
  // taking a `const FileLock&` assert.
  bool Locks(int fd) const { return ok_ && fd_ == fd; }
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;

  // False when flock() failed (errno says why); nothing is locked then.
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

}  // namespace lottery
