#include "storage/recovery.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <fmt/format.h>

#include "common/file_io.h"
#include "common/log.h"
#include "storage/batch_journal.h"
#include "storage/bets_file_row.h"
#include "storage/file_lock.h"
#include "storage/group_commit.h"
#include "storage/winner_index.h"

namespace lottery {
namespace {

Status Truncate(int fd, std::uint64_t size, const char* what) {
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0) return FailErrno(fmt::format("ftruncate {}", what));
  return Ok();
}

// Sets each agency's stored digest from the scan of the round's rows
// (`rows`), after checking that they are the `expected` bets of the journal.
Status PublishDigests(const std::vector<StoredRows>& rows,
                      const std::vector<AgencyProgress>& expected, std::uint64_t begin,
                      const std::string& path, SharedState& state, std::uint32_t agencies) {
  // The journal counts each agency's bets of the round; the file's rows
  // after the round's start must be those very bets, or WELCOME would tell
  // an agency to resume at the wrong line.
  for (std::uint32_t a = 1; a <= agencies && a < expected.size(); ++a) {
    const std::uint64_t in_file = a < rows.size() ? rows[a].count : 0;
    if (in_file != expected[a].bets) {
      return Fail(ErrorKind::kCorruptData,
                  fmt::format("{}: agency {} has {} bets in the round in progress (after byte "
                              "{}), but its journal records {}; the bets file and its journal "
                              "disagree",
                              path, a, in_file, begin, expected[a].bets));
    }
  }
  SharedLock lock(state);
  for (std::uint32_t a = 1; a <= agencies && a < rows.size(); ++a) {
    state.slots[a].stored_digest = rows[a].digest;
  }
  return Ok();
}

}  // namespace

Result<RoundRecovery> RecoverRound(int data_fd, int journal_fd, std::uint32_t agencies) {
  auto journal_size = FileSize(journal_fd);
  if (!journal_size) return std::unexpected(journal_size.error());
  auto data_size = FileSize(data_fd);
  if (!data_size) return std::unexpected(data_size.error());

  // The whole records up to the first that does not decode (a torn tail).
  std::vector<JournalRecord> records;
  std::string bytes(*journal_size, '\0');
  if (!bytes.empty()) {
    if (Status read = PreadAll(journal_fd, bytes.data(), bytes.size(), 0, "read journal"); !read) {
      return std::unexpected(read.error());
    }
  }
  for (std::size_t at = 0; at + kJournalRecordSize <= bytes.size(); at += kJournalRecordSize) {
    auto record = DecodeJournalRecord(bytes.data() + at);
    if (!record) break;
    records.push_back(*record);
  }

  RoundRecovery out;
  out.agencies.resize(agencies + 1);
  const bool unfinished = !records.empty() && records.front().kind == JournalKind::kRoundStart &&
                          records.back().kind != JournalKind::kRoundComplete;
  if (!unfinished) {
    // A new round over whatever the bets file holds, numbered after the
    // last one.
    if (!records.empty() && records.front().kind == JournalKind::kRoundStart) {
      out.number = records.front().seq + 1;
    }
    std::string start;
    EncodeJournalRecord(start,
                        JournalRecord{JournalKind::kRoundStart, 0, 0, out.number, *data_size});
    if (Status t = Truncate(journal_fd, 0, "journal"); !t) return std::unexpected(t.error());
    if (Status w = PwriteAll(journal_fd, start, 0, "write journal"); !w) return std::unexpected(w.error());
    if (::fdatasync(journal_fd) != 0) return FailErrno("fdatasync journal");
    out.begin = *data_size;
    return out;
  }

  for (const JournalRecord& r : records) {
    if (r.kind == JournalKind::kBatch && (r.agency == 0 || r.agency > agencies)) {
      return Fail(ErrorKind::kConfig, fmt::format("the journal of the round in progress has agency {}, but "
                              "server.agencies is {}; resume it with the same agencies",
                              r.agency, agencies));
    }
  }
  // Keep the records whose rows are all in the file; offsets only grow.
  std::size_t keep = 0;
  std::uint64_t end = records.front().end;
  for (const JournalRecord& r : records) {
    if (r.end > *data_size || r.end < end || (r.kind != JournalKind::kBatch && keep > 0)) break;
    end = r.end;
    ++keep;
  }
  const std::uint64_t journal_keep = keep * kJournalRecordSize;
  if (*journal_size > journal_keep) {
    if (Status t = Truncate(journal_fd, journal_keep, "journal"); !t) return std::unexpected(t.error());
    out.journal_bytes_cut = *journal_size - journal_keep;
  }
  if (*data_size > end) {
    if (Status t = Truncate(data_fd, end, "bets file"); !t) return std::unexpected(t.error());
    out.data_bytes_cut = *data_size - end;
  }
  if (out.journal_bytes_cut > 0 || out.data_bytes_cut > 0) {
    if (::fdatasync(journal_fd) != 0 || ::fdatasync(data_fd) != 0) return FailErrno("fdatasync");
  }
  out.resumed = true;
  out.number = records.front().seq;
  out.begin = records.front().end;
  for (std::size_t i = 1; i < keep; ++i) {
    const JournalRecord& r = records[i];
    AgencyProgress& a = out.agencies[r.agency];
    a.last_seq = std::max(a.last_seq, r.seq);
    a.bets += r.count;
    ++out.batches;
    out.bets += r.count;
  }
  return out;
}

void ResolvePendingAppend(int fd, int journal_fd, SharedState& state) {
  PendingAppend& p = state.pending;
  if (!p.active) return;
  auto size = FileSize(fd);
  if (size && *size >= p.start + p.length) {
    // The writer may have died between the rows and their journal record.
    if (journal_fd >= 0 && !JournalEndsWith(journal_fd, p.agency, p.seq)) {
      Status journaled = AppendJournalRecord(
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
      slot.stored_digest += p.digest;
      state.metrics.agencies[p.agency].round_bets.store(slot.bets_stored, std::memory_order_relaxed);
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

Result<StartupRecovery> StartupRecovery::Open(const std::string& path, SyncMode sync) {
  auto store = BetStore::Open(path, sync);
  if (!store) return std::unexpected(store.error());
  return StartupRecovery(std::move(*store));
}

Result<std::uint64_t> StartupRecovery::CutTornTail() {
  const int fd = store_.fd();
  FileLock lock(fd);
  if (!lock.ok()) return FailErrno("flock " + store_.path());
  auto size = FileSize(fd);
  if (!size) return std::unexpected(size.error());
  auto keep = LastRowEnd(fd, *size);
  if (!keep) {
    Error error = keep.error();
    error.message = store_.path() + ": " + error.message;
    return std::unexpected(error);
  }
  if (*keep == *size) return 0;
  if (::ftruncate(fd, static_cast<off_t>(*keep)) != 0) return FailErrno("ftruncate " + store_.path());
  if (store_.sync_mode() == SyncMode::kAlways && ::fdatasync(fd) != 0) {
    return FailErrno("fdatasync " + store_.path());
  }
  return *size - *keep;
}

Result<RoundRecovery> StartupRecovery::RecoverRound(std::uint32_t agencies) {
  FileLock lock(store_.fd());
  if (!lock.ok()) return FailErrno("flock " + store_.path());
  return lottery::RecoverRound(store_.fd(), store_.journal_fd(), agencies);
}

Result<std::uint64_t> StartupRecovery::Publish(const RoundRecovery& round, SharedSegment& shared) {
  SharedState& s = shared.state();
  {
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= s.agencies && a < round.agencies.size(); ++a) {
      s.slots[a].last_seq = round.agencies[a].last_seq;
      s.slots[a].bets_stored = round.agencies[a].bets;
      s.metrics.agencies[a].round_bets.store(round.agencies[a].bets, std::memory_order_relaxed);
    }
    s.metrics.round.store(round.number, std::memory_order_relaxed);
    s.total_bets = round.bets;
  }
  round_begin_ = round.begin;
  round_agencies_ = round.resumed ? round.agencies : std::vector<AgencyProgress>();
  auto size = store_.Size();
  // Bytes already in the file count as written; the first sync covers them.
  s.sync.written_end.store(size ? *size : 0);
  return size;
}

Result<WinnerIndexSummary> StartupRecovery::IndexWinners(SharedSegment& shared,
                                                         std::uint32_t agencies,
                                                         std::uint32_t winning_number) {
  const bool resumed = !round_agencies_.empty();
  auto scan = RebuildWinnerIndex(store_.fd(), shared.state(), agencies, winning_number,
                                 kScanChunkBytes,
                                 resumed ? std::optional<std::uint64_t>(round_begin_) : std::nullopt);
  if (!scan) return std::unexpected(scan.error());
  if (resumed) {
    if (Status digests = PublishDigests(scan->rows, round_agencies_, round_begin_, store_.path(),
                                        shared.state(), agencies);
        !digests) {
      return std::unexpected(digests.error());
    }
  }
  WinnerIndexSummary summary;
  summary.bets = scan->bets;
  for (const auto& docs : scan->winners) summary.winners += docs.size();
  SharedLock lock(shared.state());
  summary.enabled = shared.state().winner_index.enabled;
  return summary;
}

}  // namespace lottery
