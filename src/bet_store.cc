#include "bet_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <optional>

#include "crash_point.h"
#include "file_io.h"
#include "csv.h"
#include "log.h"

namespace lottery {
namespace {

// RAII exclusive flock() on a descriptor.
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
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool ok() const { return ok_; }

 private:
  int fd_;
  bool ok_ = false;
};

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

void AdvanceWrittenEnd(SyncState& sync, std::uint64_t end) {
  std::uint64_t seen = sync.written_end.load(std::memory_order_relaxed);
  while (seen < end && !sync.written_end.compare_exchange_weak(seen, end,
                                                               std::memory_order_release)) {
  }
}

// Appends one batch record at the end of the journal (cutting a torn record
// first, so records stay aligned). Call with the flock held.
Status AppendJournal(int journal_fd, const JournalRecord& record) {
  auto size = FileSize(journal_fd);
  if (!size) return std::unexpected(size.error());
  std::uint64_t at = *size - *size % kJournalRecordSize;
  if (at != *size && ::ftruncate(journal_fd, static_cast<off_t>(at)) != 0) {
    return FailErrno("ftruncate journal");
  }
  std::string bytes;
  EncodeJournalRecord(bytes, record);
  if (Status w = PwriteAll(journal_fd, bytes, at); !w) {
    (void)::ftruncate(journal_fd, static_cast<off_t>(at));
    return w;
  }
  return Ok();
}

// Whether the journal's last whole record is batch `seq` of `agency`.
bool JournalEndsWith(int journal_fd, std::uint32_t agency, std::uint64_t seq) {
  auto size = FileSize(journal_fd);
  if (!size || *size < kJournalRecordSize) return false;
  std::uint64_t at = *size - *size % kJournalRecordSize - kJournalRecordSize;
  char bytes[kJournalRecordSize];
  if (::pread(journal_fd, bytes, sizeof bytes, static_cast<off_t>(at)) != static_cast<ssize_t>(sizeof bytes)) {
    return false;
  }
  auto record = DecodeJournalRecord(bytes);
  return record && record->kind == JournalKind::kBatch && record->agency == agency &&
         record->seq == seq;
}

// Makes a new file's directory entry durable.
Status SyncParentDirectory(const std::string& path) {
  auto slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + dir);
  if (::fsync(fd.get()) != 0) return FailErrno("fsync " + dir);
  return Ok();
}

}  // namespace

Result<BetStore> BetStore::Open(const std::string& path, SyncMode sync) {
  auto open = [sync](const std::string& name) -> Result<UniqueFd> {
    int fd = ::open(name.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0 && sync == SyncMode::kAlways) {
        if (Status dir = SyncParentDirectory(name); !dir) {
          ::close(fd);
          return std::unexpected(dir.error());
        }
      }
    }
    if (fd < 0) return FailErrno("open " + name);
    return UniqueFd(fd);
  };
  auto data = open(path);
  if (!data) return std::unexpected(data.error());
  auto journal = open(path + ".journal");
  if (!journal) return std::unexpected(journal.error());
  return BetStore(path, std::move(*data), std::move(*journal), sync);
}

Status BetStore::MakeDurable(SharedSegment& shared, std::uint64_t end) {
  if (sync_ == SyncMode::kNever) return Ok();
  SyncState& sync = shared.state().sync;
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
    rc = ::fdatasync(fd_.get());
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return FailErrno("fdatasync " + path_);
  do {
    rc = ::fdatasync(journal_.get());
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) return FailErrno("fdatasync " + path_ + ".journal");
  ++sync.syncs;
  sync.durable_end = std::max(sync.durable_end, std::max(target, end));
  return Ok();
}

Status BetStore::MakeAllDurable(SharedSegment& shared) {
  return MakeDurable(shared, shared.state().sync.written_end.load(std::memory_order_acquire));
}

Result<std::uint64_t> BetStore::Size() const { return FileSize(fd_.get()); }

void ResolvePendingAppend(int fd, int journal_fd, SharedState& state) {
  PendingAppend& p = state.pending;
  if (!p.active) return;
  auto size = FileSize(fd);
  if (size && *size >= p.start + p.length) {
    // The writer may have died between the rows and their journal record.
    if (journal_fd >= 0 && !JournalEndsWith(journal_fd, p.agency, p.seq)) {
      Status journaled = AppendJournal(
          journal_fd, JournalRecord{JournalKind::kBatch, p.agency,
                                    static_cast<std::uint32_t>(p.count), p.seq, p.start + p.length});
      if (!journaled) {
        Log(LogLevel::kError, "recover_append", Outcome::kFail, "agency: {} | error: {}", p.agency,
            journaled.error().message);
        return;  // Leave it pending; the next writer tries again.
      }
    }
    AdvanceWrittenEnd(state.sync, p.start + p.length);
    AgencySlot& slot = state.slots[p.agency];
    if (slot.last_seq < p.seq) {
      slot.last_seq = p.seq;
      slot.bets_stored += p.count;
      state.total_bets += p.count;
    }
    Log(LogLevel::kWarning, "recover_append", Outcome::kSuccess,
        "agency: {} | seq: {} | detail: batch of a dead writer was complete, kept", p.agency, p.seq);
  } else if (size && *size > p.start) {
    if (::ftruncate(fd, static_cast<off_t>(p.start)) == 0) {
      Log(LogLevel::kWarning, "recover_append", Outcome::kSuccess,
          "agency: {} | seq: {} | bytes_cut: {}", p.agency, p.seq, *size - p.start);
    } else {
      Log(LogLevel::kError, "recover_append", Outcome::kFail, "agency: {} | error: {}", p.agency,
          FailErrno("ftruncate").error().message);
      return;  // Leave it pending; the next writer tries again.
    }
  }
  p.active = false;
}

Status BetStore::Recover(SharedSegment& shared) {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  SharedLock guard(shared.state());
  ResolvePendingAppend(fd_.get(), journal_.get(), shared.state());
  return Ok();
}

Result<bool> BetStore::Append(std::string_view rows, SharedSegment& shared, std::uint32_t agency,
                              std::uint64_t seq, std::uint64_t count) {
  auto end = AppendUnderLock(rows, shared, agency, seq, count);
  if (!end) return std::unexpected(end.error());
  if (!*end) return false;
  // The flock is released: other writers append while this one syncs.
  if (Status durable = MakeDurable(shared, **end); !durable) return std::unexpected(durable.error());
  CRASH_POINT("before_ack");
  return true;
}

Result<std::optional<std::uint64_t>> BetStore::AppendUnderLock(std::string_view rows, SharedSegment& shared,
                                                std::uint32_t agency, std::uint64_t seq,
                                                std::uint64_t count) {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  SharedState& state = shared.state();
  std::uint64_t start = 0;
  {
    SharedLock guard(state);
    ResolvePendingAppend(fd_.get(), journal_.get(), state);
    // The repair may just have committed this very batch from a dead writer.
    if (state.slots[agency].last_seq >= seq) return std::nullopt;
    auto size = FileSize(fd_.get());
    if (!size) return std::unexpected(size.error());
    start = *size;
    state.pending = PendingAppend{true, agency, seq, count, start, rows.size()};
  }
  CRASH_POINT("before_rows");
  Status written = PwriteAll(fd_.get(), rows, start);
  CRASH_POINT("after_rows");
  if (written) {
    written = AppendJournal(journal_.get(),
                            JournalRecord{JournalKind::kBatch, agency,
                                          static_cast<std::uint32_t>(count), seq, start + rows.size()});
  }
  CRASH_POINT("after_record");
  SharedLock guard(state);
  CRASH_POINT("holding_shared_lock");
  if (!written) {
    // All or nothing: cut back whatever part of the batch reached the file.
    if (::ftruncate(fd_.get(), static_cast<off_t>(start)) == 0) state.pending.active = false;
    return std::unexpected(written.error());
  }
  AgencySlot& slot = state.slots[agency];
  slot.last_seq = seq;
  slot.bets_stored += count;
  state.total_bets += count;
  state.pending.active = false;
  AdvanceWrittenEnd(state.sync, start + rows.size());
  return std::optional<std::uint64_t>(start + rows.size());
}

Result<RoundRecovery> BetStore::RecoverRound(std::uint32_t agencies) {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  return lottery::RecoverRound(fd_.get(), journal_.get(), agencies);
}

Status BetStore::MarkRoundComplete() {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  auto size = FileSize(fd_.get());
  if (!size) return std::unexpected(size.error());
  auto journal_size = FileSize(journal_.get());
  if (!journal_size) return std::unexpected(journal_size.error());
  std::string bytes;
  EncodeJournalRecord(bytes, JournalRecord{JournalKind::kRoundComplete, 0, 0, 0, *size});
  std::uint64_t at = *journal_size - *journal_size % kJournalRecordSize;
  if (Status w = PwriteAll(journal_.get(), bytes, at); !w) return w;
  if (sync_ == SyncMode::kAlways && ::fdatasync(journal_.get()) != 0) {
    return FailErrno("fdatasync " + path_ + ".journal");
  }
  return Ok();
}

Result<std::uint64_t> BetStore::CutTornTail() {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  auto size = FileSize(fd_.get());
  if (!size) return std::unexpected(size.error());
  // Walk back from the end to the last line end, a block at a time.
  std::uint64_t keep = 0;
  std::uint64_t pos = *size;
  char block[4096];
  while (pos > 0) {
    std::uint64_t from = pos > sizeof block ? pos - sizeof block : 0;
    std::size_t want = static_cast<std::size_t>(pos - from);
    ssize_t n;
    do {
      n = ::pread(fd_.get(), block, want, static_cast<off_t>(from));
    } while (n < 0 && errno == EINTR);
    if (n != static_cast<ssize_t>(want)) return FailErrno("read " + path_);
    std::string_view view(block, want);
    if (auto nl = view.rfind('\n'); nl != std::string_view::npos) {
      keep = from + nl + 1;
      break;
    }
    pos = from;
  }
  if (keep == *size) return 0;
  if (::ftruncate(fd_.get(), static_cast<off_t>(keep)) != 0) return FailErrno("ftruncate " + path_);
  if (sync_ == SyncMode::kAlways && ::fdatasync(fd_.get()) != 0) return FailErrno("fdatasync " + path_);
  return *size - keep;
}

Status BetStore::ForEachBet(const std::function<void(const BetView&)>& fn,
                            std::uint64_t& skipped) const {
  // A separate descriptor so the read offset is this reader's own.
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + path_);
  CsvReader reader(fd.get());
  while (true) {
    auto next = reader.Next();
    if (!next) return std::unexpected(next.error());
    if (!next->has_value()) return Ok();
    const CsvRecord& record = ***next;
    if (record.error || !record.terminated) {
      ++skipped;
      continue;
    }
    auto bet = StoredRecordToBet(record);
    if (!bet) {
      ++skipped;
      continue;
    }
    fn(*bet);
  }
}

}  // namespace lottery
