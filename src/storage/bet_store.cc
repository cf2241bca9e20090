#include "storage/bet_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cassert>

#include <algorithm>
#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/file_io.h"
#include "common/log.h"
#include "storage/batch_journal.h"
#include "storage/file_lock.h"
#include "storage/group_commit.h"
#include "storage/recovery.h"
#include "storage/winner_index.h"

namespace lottery {
namespace {}  // namespace

namespace {

// An existing bets file or journal holds personal data and what the round
// is: one that another user owns, or that others may write, is refused; one
// that others may read (or run) is narrowed to kBetsFileMode, with a warning.
Status GuardExistingFile(int fd, const std::string& name) {
  struct stat st;
  if (::fstat(fd, &st) != 0) return FailErrno("stat " + name);
  if (st.st_uid != ::geteuid()) {
    return Fail(ErrorKind::kConfig,
                fmt::format("{} is owned by uid {}, not by this server's user (uid {}): another "
                            "user's file is not taken over; chown it or move it away",
                            name, st.st_uid, ::geteuid()));
  }
  const mode_t mode = st.st_mode & 07777;
  if ((mode & (S_IWGRP | S_IWOTH)) != 0) {
    return Fail(ErrorKind::kConfig,
                fmt::format("{} has mode {:04o}: writable by {}; chmod 0640 it before starting",
                            name, mode, (mode & S_IWOTH) ? "every user" : "its group"));
  }
  if ((mode & ~static_cast<mode_t>(kBetsFileMode)) != 0) {
    if (::fchmod(fd, kBetsFileMode) != 0) return FailErrno("chmod " + name);
    Log(LogLevel::kWarning, "storage", Outcome::kSuccess,
        "path: {} | old_mode: {:04o} | new_mode: {:04o} | detail: readable beyond its owner and "
        "group; narrowed (it holds personal data)",
        name, mode, kBetsFileMode);
  }
  return Ok();
}

}  // namespace

Result<BetStore> BetStore::Open(const std::string& path, SyncMode sync) {
  auto open = [sync](const std::string& name) -> Result<UniqueFd> {
    int fd = ::open(name.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
      // Personal data: owner and group only, whatever the umask says.
      fd = ::open(name.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, kBetsFileMode);
      if (fd >= 0 && ::fchmod(fd, kBetsFileMode) != 0) {
        ::close(fd);
        return FailErrno("chmod " + name);
      }
      if (fd >= 0 && sync == SyncMode::kAlways) {
        if (Status dir = SyncDirectory(DirectoryOf(name)); !dir) {
          ::close(fd);
          return std::unexpected(dir.error());
        }
      }
    }
    if (fd < 0) return FailErrno("open " + name);
    UniqueFd owned(fd);
    if (Status guarded = GuardExistingFile(owned.get(), name); !guarded) {
      return std::unexpected(guarded.error());
    }
    return owned;
  };
  auto data = open(path);
  if (!data) return std::unexpected(data.error());
  auto journal = open(path + ".journal");
  if (!journal) return std::unexpected(journal.error());
  return BetStore(path, std::move(*data), std::move(*journal), sync);
}

Status BetStore::MakeDurable(SharedSegment& shared, std::uint64_t end) {
  if (sync_ == SyncMode::kNever) return Ok();
  return GroupCommit(shared.state().sync, fd_.get(), journal_.get(), path_, end,
                     shared.state().metrics.fdatasync);
}

Status BetStore::MakeAllDurable(SharedSegment& shared) {
  return MakeDurable(shared, shared.state().sync.written_end.load(std::memory_order_acquire));
}

Result<std::uint64_t> BetStore::Size() const { return FileSize(fd_.get()); }

Status BetStore::Recover(SharedSegment& shared) {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  SharedLock guard(shared.state());
  ResolvePendingAppend(lock, guard, fd_.get(), journal_.get(), shared.state());
  return Ok();
}

Result<AppendOutcome> BetStore::AppendBatches(std::string_view rows, SharedSegment& shared,
                                              std::uint32_t agency,
                                              std::span<const BatchExtent> batches,
                                              std::span<const IndexedWinner> winners) {
  assert(!batches.empty());  // bet_store.h: batches must not be empty
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  SharedState& state = shared.state();
  AppendOutcome outcome;
  std::uint64_t start = 0;
  std::uint64_t count = 0;
  std::uint64_t digest = 0;
  std::string_view body;
  std::span<const IndexedWinner> body_winners;
  const std::uint64_t last_seq = batches.back().seq;
  {
    SharedLock guard(state);
    if (round_ && state.round.load(std::memory_order_acquire) != *round_) {
      return Fail(ErrorKind::kBusy,
                  fmt::format("round {} is over and its bets file archived", *round_));
    }
    // The draw reads the file up to where it is when the draw starts.
    if (state.draw_state != DrawState::kNotYet) {
      return Fail(ErrorKind::kBusy, "betting closed: the draw has started");
    }
    ResolvePendingAppend(lock, guard, fd_.get(), journal_.get(), state);
    // The repair may just have committed some of these batches from a dead writer.
    const std::uint64_t stored_seq = state.slots[agency].last_seq;
    while (outcome.skipped < batches.size() && batches[outcome.skipped].seq <= stored_seq) {
      ++outcome.skipped;
    }
    if (outcome.skipped == batches.size()) {
      outcome.bets_stored = state.slots[agency].bets_stored;
      outcome.stored_digest = state.slots[agency].stored_digest;
      return outcome;
    }
    const std::size_t rows_begin = outcome.skipped ? batches[outcome.skipped - 1].rows_end : 0;
    const std::size_t winners_begin =
        outcome.skipped ? batches[outcome.skipped - 1].winners_end : 0;
    body = rows.substr(rows_begin);
    body_winners = winners.subspan(winners_begin);
    for (std::size_t i = outcome.skipped; i < batches.size(); ++i) {
      count += batches[i].count;
      digest += batches[i].digest;
    }
    auto size = FileSize(fd_.get());
    if (!size) return std::unexpected(size.error());
    start = *size;
    state.pending = PendingAppend{true, agency, last_seq, count, start, body.size(), digest};
  }
  CRASH_POINT("before_rows");
  Status written = PwriteAll(fd_.get(), body, start);
  CRASH_POINT("after_rows");
  if (written) {
    written = AppendJournalRecord(
        lock, journal_.get(),
        JournalRecord{JournalKind::kBatch, agency, static_cast<std::uint32_t>(count), last_seq,
                      start + body.size()});
  }
  CRASH_POINT("after_record");
  SharedLock guard(state);
  CRASH_POINT("holding_shared_lock");
  if (!written) {
    // All or nothing: cut back whatever part of the batches reached the file.
    if (::ftruncate(fd_.get(), static_cast<off_t>(start)) == 0) state.pending.active = false;
    return std::unexpected(written.error());
  }
  AdvanceStoredProgress(state, guard, agency, last_seq, count, digest);
  outcome.bets_stored = state.slots[agency].bets_stored;
  outcome.stored_digest = state.slots[agency].stored_digest;
  IndexBatch(state, guard, start, start + body.size(), count, body_winners);
  state.pending.active = false;
  AdvanceWrittenEnd(state.sync, start + body.size());
  outcome.end = start + body.size();
  return outcome;
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

Result<bool> BetStore::RecordFinished(SharedSegment& shared, std::uint32_t agency,
                                      const std::function<void(SharedState&)>& finish) {
  FileLock lock(fd_.get());
  if (!lock.ok()) return FailErrno("flock " + path_);
  SharedState& state = shared.state();
  std::uint64_t bets = 0;
  {
    SharedLock guard(state);
    ResolvePendingAppend(lock, guard, fd_.get(), journal_.get(), state);
    if (state.slots[agency].finished) return true;
    if (state.betting_closed) return false;
    bets = state.slots[agency].bets_stored;
  }
  auto size = FileSize(fd_.get());
  if (!size) return std::unexpected(size.error());
  if (Status a = AppendJournalRecord(lock, journal_.get(),
                                     JournalRecord{JournalKind::kAgencyFinished, agency,
                                                   static_cast<std::uint32_t>(bets), 0, *size});
      !a) {
    return std::unexpected(a.error());
  }
  if (sync_ == SyncMode::kAlways && ::fdatasync(journal_.get()) != 0) {
    return FailErrno("fdatasync " + path_ + ".journal");
  }
  CRASH_POINT("after_finished_record");
  SharedLock guard(state);
  finish(state);
  return true;
}

}  // namespace lottery
