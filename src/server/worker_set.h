// WorkerSet is the parent's set of live worker processes. Whatever is left
// in it when it goes away is killed and reaped, so no path out of the parent
// leaves a child behind.
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <cstddef>
#include <set>

namespace lottery {

class WorkerSet {
 public:
  WorkerSet() = default;
  WorkerSet(const WorkerSet&) = delete;
  WorkerSet& operator=(const WorkerSet&) = delete;
  ~WorkerSet() {
    for (pid_t pid : pids_) ::kill(pid, SIGKILL);
    for (pid_t pid : pids_) ::waitpid(pid, nullptr, 0);
  }
  void Add(pid_t pid) { pids_.insert(pid); }
  bool Remove(pid_t pid) { return pids_.erase(pid) > 0; }
  void SignalAll(int sig) {
    for (pid_t pid : pids_) ::kill(pid, sig);
  }
  std::size_t size() const { return pids_.size(); }
  bool empty() const { return pids_.empty(); }

 private:
  std::set<pid_t> pids_;
};

}  // namespace lottery
