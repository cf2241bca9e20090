#include "storage/data_lock.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <string_view>
#include <thread>
#include <utility>

#include <fmt/format.h>

#include "common/file_io.h"

namespace lottery {
namespace {

bool Alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

// Whether `fd` is still the file at `path` (not unlinked or replaced by a
// process that released the lock meanwhile).
bool StillAt(int fd, const std::string& path) {
  struct stat held {
  }, named{};
  if (::fstat(fd, &held) != 0 || ::stat(path.c_str(), &named) != 0) return false;
  return held.st_dev == named.st_dev && held.st_ino == named.st_ino;
}

}  // namespace

std::string DataLock::PathFor(const std::string& bets_path) { return bets_path + ".lock"; }

pid_t ReadLockOwner(const std::string& lock_path) {
  UniqueFd fd(::open(lock_path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return 0;
  char text[32];
  ssize_t n = ::pread(fd.get(), text, sizeof text - 1, 0);
  if (n <= 0) return 0;
  std::string_view view(text, static_cast<std::size_t>(n));
  while (!view.empty() && (view.back() == '\n' || view.back() == ' ')) view.remove_suffix(1);
  pid_t pid = 0;
  auto [end, ec] = std::from_chars(view.data(), view.data() + view.size(), pid);
  if (ec != std::errc() || end != view.data() + view.size() || pid <= 0) return 0;
  return pid;
}

Result<DataLock> DataLock::Acquire(const std::string& bets_path,
                                   std::chrono::milliseconds wait_for_orphans,
                                   const std::function<void(pid_t owner)>& waiting) {
  const std::string path = PathFor(bets_path);
  const auto give_up = std::chrono::steady_clock::now() + wait_for_orphans;
  bool told = false;
  while (true) {
    bool created = true;
    int raw = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (raw < 0 && errno == EEXIST) {
      created = false;
      raw = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
      if (raw < 0 && errno == ENOENT) continue;  // removed meanwhile: try again
    }
    if (raw < 0) return FailErrno(fmt::format("lock file {}", path));
    UniqueFd fd(raw);
    if (created) (void)::fchmod(fd.get(), 0640);  // whatever the umask
    int rc;
    do {
      rc = ::flock(fd.get(), LOCK_EX | LOCK_NB);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) {
      // Locked, but the holder before may have removed the file after we
      // opened it: then another process can lock the new file. Start over.
      if (!StillAt(fd.get(), path)) continue;
      return DataLock(path, std::move(fd), created);
    }
    if (errno != EWOULDBLOCK) return FailErrno(fmt::format("flock {}", path));
    const pid_t owner = ReadLockOwner(path);
    if (owner == 0 || Alive(owner)) {
      return Fail(ErrorKind::kBusy,
                  owner != 0 ? fmt::format("the bets file {} belongs to another server (pid {}, "
                                           "lock {})",
                                           bets_path, owner, path)
                             : fmt::format("the bets file {} belongs to another server that is "
                                           "starting (lock {})",
                                           bets_path, path));
    }
    // The owner is gone but the lock is held: its workers still run.
    if (std::chrono::steady_clock::now() >= give_up) {
      return Fail(ErrorKind::kBusy,
                  fmt::format("the bets file {} is still held by workers of a server that is "
                              "gone (pid {}, lock {}); they did not exit in {} ms",
                              bets_path, owner, path, wait_for_orphans.count()));
    }
    if (!told && waiting) waiting(owner);
    told = true;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

DataLock::DataLock(DataLock&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::move(other.fd_)),
      created_(other.created_),
      published_(other.published_) {}

DataLock::~DataLock() { Release(LockFile::kKeep); }

Status DataLock::Publish(pid_t pid) {
  const std::string text = fmt::format("{}\n", pid);
  if (::ftruncate(fd_.get(), 0) != 0) return FailErrno(fmt::format("ftruncate {}", path_));
  if (Status w = PwriteAll(fd_.get(), text, 0, "write lock file"); !w) return w;
  published_ = true;
  return Ok();
}

void DataLock::Release(LockFile file) {
  if (!fd_) return;
  // Removed while still locked, so nobody can lock the old file and think
  // it owns the data (Acquire checks the path still names what it locked).
  if (file == LockFile::kRemove || (created_ && !published_)) (void)::unlink(path_.c_str());
  fd_.Reset();
}

}  // namespace lottery
