#include "shared_state.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>
#include <new>
#include <utility>

#include "log.h"

namespace lottery {

Result<SharedSegment> SharedSegment::Create(std::uint32_t agencies) {
  if (agencies == 0 || agencies > kMaxAgencies) return Fail("agencies out of range");
  void* mem = ::mmap(nullptr, sizeof(SharedState), PROT_READ | PROT_WRITE,
                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return FailErrno("mmap shared segment");
  auto* state = new (mem) SharedState();
  state->agencies = agencies;

  pthread_mutexattr_t mattr;
  pthread_mutexattr_init(&mattr);
  pthread_mutexattr_setpshared(&mattr, PTHREAD_PROCESS_SHARED);
  pthread_mutexattr_setrobust(&mattr, PTHREAD_MUTEX_ROBUST);
  int rc = pthread_mutex_init(&state->mutex, &mattr);
  pthread_mutexattr_destroy(&mattr);
  if (rc != 0) {
    ::munmap(mem, sizeof(SharedState));
    return FailErrno("pthread_mutex_init", rc);
  }
  pthread_condattr_t cattr;
  pthread_condattr_init(&cattr);
  pthread_condattr_setpshared(&cattr, PTHREAD_PROCESS_SHARED);
  pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
  rc = pthread_cond_init(&state->changed, &cattr);
  pthread_condattr_destroy(&cattr);
  if (rc != 0) {
    pthread_mutex_destroy(&state->mutex);
    ::munmap(mem, sizeof(SharedState));
    return FailErrno("pthread_cond_init", rc);
  }
  SharedSegment segment(state);
  segment.MarkOwner();
  return segment;
}

SharedSegment::SharedSegment(SharedSegment&& other) noexcept
    : state_(std::exchange(other.state_, nullptr)), owner_pid_(std::exchange(other.owner_pid_, 0)) {}

SharedSegment::~SharedSegment() {
  if (state_ == nullptr) return;
  if (owner_pid_ == ::getpid()) {
    pthread_cond_destroy(&state_->changed);
    pthread_mutex_destroy(&state_->mutex);
  }
  ::munmap(state_, sizeof(SharedState));
}

SharedLock::SharedLock(SharedState& state) : state_(state) {
  int rc = pthread_mutex_lock(&state_.mutex);
  if (rc == EOWNERDEAD) {
    // The fields are kept consistent step by step; see PendingAppend.
    pthread_mutex_consistent(&state_.mutex);
    recovered_ = true;
    Log(LogLevel::kWarning, "shared_lock_recovered", Outcome::kSuccess,
        "reason: previous owner died holding the lock");
  }
}

SharedLock::~SharedLock() { pthread_mutex_unlock(&state_.mutex); }

bool SharedLock::Wait(std::chrono::milliseconds timeout) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  auto ns = static_cast<long long>(ts.tv_nsec) +
            std::chrono::duration_cast<std::chrono::nanoseconds>(timeout).count();
  ts.tv_sec += static_cast<time_t>(ns / 1000000000LL);
  ts.tv_nsec = static_cast<long>(ns % 1000000000LL);
  int rc = pthread_cond_timedwait(&state_.changed, &state_.mutex, &ts);
  if (rc == EOWNERDEAD) {
    pthread_mutex_consistent(&state_.mutex);
    recovered_ = true;
  }
  return rc != ETIMEDOUT;
}

void SharedLock::Broadcast() { pthread_cond_broadcast(&state_.changed); }

}  // namespace lottery
