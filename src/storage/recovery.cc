#include "storage/recovery.h"

#include <unistd.h>
#include <cassert>

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
  if (::ftruncate(fd, static_cast<off_t>(size)) != 0)
    return FailErrno(fmt::format("ftruncate {}", what));
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

namespace {

Result<std::vector<JournalRecord>> ReadJournal(int journal_fd, std::uint64_t& size) {
  auto journal_size = FileSize(journal_fd);
  if (!journal_size) return std::unexpected(journal_size.error());
  size = *journal_size;
  std::string bytes(*journal_size, '\0');
  if (!bytes.empty()) {
    if (Status read = PreadAll(journal_fd, bytes.data(), bytes.size(), 0, "read journal"); !read) {
      return std::unexpected(read.error());
    }
  }
  // The whole records up to the first that does not decode (a torn tail).
  std::vector<JournalRecord> records;
  for (std::size_t at = 0; at + kJournalRecordSize <= bytes.size(); at += kJournalRecordSize) {
    auto record = DecodeJournalRecord(bytes.data() + at);
    if (!record) break;
    records.push_back(*record);
  }
  return records;
}

Status CheckAgencies(const std::vector<JournalRecord>& records, std::uint32_t agencies) {
  for (const JournalRecord& r : records) {
    const bool names_agency =
        r.kind == JournalKind::kBatch || r.kind == JournalKind::kAgencyFinished;
    if (names_agency && (r.agency == 0 || r.agency > agencies)) {
      return Fail(ErrorKind::kConfig,
                  fmt::format("the journal of the round in progress has agency {}, but "
                              "server.agencies is {}; resume it with the same agencies",
                              r.agency, agencies));
    }
  }
  return Ok();
}

// How many records, from the first, describe rows that are all in a file of
// `data_size` bytes (offsets only grow), and where those rows end.
std::size_t RecordsToKeep(const std::vector<JournalRecord>& records, std::uint64_t data_size,
                          std::uint64_t& end) {
  std::size_t keep = 1;
  end = records.front().end;
  for (std::size_t i = 1; i < records.size(); ++i) {
    const JournalRecord& r = records[i];
    if (r.kind == JournalKind::kRoundStart || r.kind == JournalKind::kRoundComplete) break;
    if (r.kind == JournalKind::kBatch) {
      if (r.end > data_size || r.end < end) break;
      end = r.end;
    }
    ++keep;
  }
  return keep;
}

// Each agency's progress and the round's flags, from the records kept.
void Tally(const std::vector<JournalRecord>& records, std::size_t keep, RoundRecovery& out) {
  for (std::size_t i = 1; i < keep; ++i) {
    const JournalRecord& r = records[i];
    if (r.kind == JournalKind::kBettingClosed) out.betting_closed = true;
    if (r.kind == JournalKind::kAgencyFinished) out.agencies[r.agency].finished = true;
    if (r.kind != JournalKind::kBatch) continue;
    AgencyProgress& a = out.agencies[r.agency];
    a.last_seq = std::max(a.last_seq, r.seq);
    a.bets += r.count;
    ++out.batches;
    out.bets += r.count;
  }
}

Result<RoundRecovery> StartFirstRound(int journal_fd, std::uint64_t data_size, RoundRecovery out) {
  std::string start;
  EncodeJournalRecord(start, JournalRecord{JournalKind::kRoundStart, 0, 0, out.number, data_size});
  if (Status t = Truncate(journal_fd, 0, "journal"); !t) return std::unexpected(t.error());
  if (Status w = PwriteAll(journal_fd, start, 0, "write journal"); !w)
    return std::unexpected(w.error());
  if (::fdatasync(journal_fd) != 0) return FailErrno("fdatasync journal");
  out.begin = data_size;
  return out;
}

// A drawn round: its records as they are, its result, and the
// round-complete record a crash may have kept from the journal.
Result<RoundRecovery> RecoverDrawnRound(const FileLock& flocked, int journal_fd,
                                        const std::vector<JournalRecord>& records,
                                        const RoundResult& result, RoundRecovery out) {
  Tally(records, records.size(), out);
  out.resumed = true;
  out.begin = records.front().end;
  out.state = RoundState::kDrawn;
  out.betting_closed = true;
  for (std::uint32_t a = 1; a < out.agencies.size(); ++a) {
    out.agencies[a].finished = a < result.took_part.size() && result.took_part[a];
  }
  out.result = result;
  if (records.back().kind != JournalKind::kRoundComplete) {
    Status a = AppendJournalRecord(
        flocked, journal_fd,
        JournalRecord{JournalKind::kRoundComplete, 0, 0, 0, result.bets_file_size});
    if (!a) return std::unexpected(a.error());
    if (::fdatasync(journal_fd) != 0) return FailErrno("fdatasync journal");
  }
  return out;
}

}  // namespace

Result<RoundRecovery> RecoverRound(const FileLock& flocked, int data_fd, int journal_fd,
                                   std::uint32_t agencies,
                                   const std::optional<RoundResult>& result) {
  assert(flocked.Locks(data_fd));
  std::uint64_t journal_size = 0;
  auto read = ReadJournal(journal_fd, journal_size);
  if (!read) return std::unexpected(read.error());
  const std::vector<JournalRecord>& records = *read;
  auto data_size = FileSize(data_fd);
  if (!data_size) return std::unexpected(data_size.error());

  RoundRecovery out;
  out.agencies.resize(agencies + 1);
  if (records.empty() || records.front().kind != JournalKind::kRoundStart) {
    if (result) {
      return Fail(ErrorKind::kCorruptData,
                  fmt::format("a result file of round {} without its journal: move it away, or "
                              "bring back the journal",
                              result->round));
    }
    return StartFirstRound(journal_fd, *data_size, std::move(out));
  }
  out.number = records.front().seq;
  if (Status checked = CheckAgencies(records, agencies); !checked) {
    return std::unexpected(checked.error());
  }
  const bool drawn = result && result->round == out.number;
  if (result && !drawn) {
    return Fail(ErrorKind::kCorruptData,
                fmt::format("the result file is of round {}, but the journal's round is {}",
                            result->round, out.number));
  }
  if (drawn && result->agencies() != agencies) {
    return Fail(ErrorKind::kConfig,
                fmt::format("round {} was drawn with {} agencies, but server.agencies is {}",
                            out.number, result->agencies(), agencies));
  }
  if (drawn) return RecoverDrawnRound(flocked, journal_fd, records, *result, std::move(out));
  if (records.back().kind == JournalKind::kRoundComplete) {
    return Fail(ErrorKind::kCorruptData,
                fmt::format("the journal says round {} was drawn, but its result file is missing",
                            out.number));
  }
  std::uint64_t end = 0;
  const std::size_t keep = RecordsToKeep(records, *data_size, end);
  const std::uint64_t journal_keep = keep * kJournalRecordSize;
  if (journal_size > journal_keep) {
    if (Status t = Truncate(journal_fd, journal_keep, "journal"); !t)
      return std::unexpected(t.error());
    out.journal_bytes_cut = journal_size - journal_keep;
  }
  if (*data_size > end) {
    if (Status t = Truncate(data_fd, end, "bets file"); !t) return std::unexpected(t.error());
    out.data_bytes_cut = *data_size - end;
  }
  if (out.journal_bytes_cut > 0 || out.data_bytes_cut > 0) {
    if (::fdatasync(journal_fd) != 0 || ::fdatasync(data_fd) != 0) return FailErrno("fdatasync");
  }
  out.resumed = true;
  Tally(records, keep, out);
  out.state = out.betting_closed ? RoundState::kClosed : RoundState::kOpen;
  out.begin = records.front().end;
  return out;
}

void ResolvePendingAppend(const FileLock& flocked, const SharedLock& held, int fd, int journal_fd,
                          SharedState& state) {
  assert(flocked.Locks(fd));
  assert(held.Holds(state));
  PendingAppend& p = state.pending;
  if (!p.active) return;
  auto size = FileSize(fd);
  if (size && *size >= p.start + p.length) {
    // The writer may have died between the rows and their journal record.
    if (journal_fd >= 0 && !JournalEndsWith(journal_fd, p.agency, p.seq)) {
      Status journaled = AppendJournalRecord(
          flocked, journal_fd,
          JournalRecord{JournalKind::kBatch, p.agency, static_cast<std::uint32_t>(p.count), p.seq,
                        p.start + p.length});
      if (!journaled) {
        Log(LogLevel::kError, "recover_append", Outcome::kFail, "agency: {} | error: {}", p.agency,
            journaled.error().message);
        return;  // Leave it pending; the next writer tries again.
      }
    }
    AdvanceWrittenEnd(state.sync, p.start + p.length);
    if (state.slots[p.agency].last_seq < p.seq) {
      AdvanceStoredProgress(state, held, p.agency, p.seq, p.count, p.digest);
    }
    Log(LogLevel::kWarning, "recover_append", Outcome::kSuccess,
        "agency: {} | seq: {} | detail: batch of a dead writer was complete, kept", p.agency,
        p.seq);
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
  // Before the files are opened: finishing an open replaces them.
  auto opened = FinishInterruptedOpen(path);
  if (!opened) return std::unexpected(opened.error());
  auto store = BetStore::Open(path, sync);
  if (!store) return std::unexpected(store.error());
  StartupRecovery recovery(std::move(*store));
  recovery.opened_round_ = *opened;
  return recovery;
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
  if (::ftruncate(fd, static_cast<off_t>(*keep)) != 0)
    return FailErrno("ftruncate " + store_.path());
  if (store_.sync_mode() == SyncMode::kAlways && ::fdatasync(fd) != 0) {
    return FailErrno("fdatasync " + store_.path());
  }
  return *size - *keep;
}

Result<RoundRecovery> StartupRecovery::RecoverCurrentRound(std::uint32_t agencies) {
  FileLock lock(store_.fd());
  if (!lock.ok()) return FailErrno("flock " + store_.path());
  std::optional<RoundResult> result;
  const std::string result_path = CurrentRoundFiles(store_.path()).result;
  if (::access(result_path.c_str(), F_OK) == 0) {
    auto read = ReadRoundResult(result_path);
    if (!read) return std::unexpected(read.error());
    result = std::move(*read);
  }
  return RecoverRound(lock, store_.fd(), store_.journal_fd(), agencies, result);
}

Result<std::uint64_t> StartupRecovery::Publish(const RoundRecovery& round, SharedSegment& shared) {
  SharedState& s = shared.state();
  {
    SharedLock lock(s);
    for (std::uint32_t a = 1; a <= s.agencies && a < round.agencies.size(); ++a) {
      const AgencyProgress& progress = round.agencies[a];
      s.slots[a].last_seq = progress.last_seq;
      s.slots[a].bets_stored = progress.bets;
      s.slots[a].finished = progress.finished;
      s.finished_count += progress.finished ? 1 : 0;
      s.metrics.agencies[a].round_bets.store(progress.bets, std::memory_order_relaxed);
      s.metrics.agencies[a].finished.store(progress.finished ? 1 : 0, std::memory_order_relaxed);
    }
    s.betting_closed.store(round.betting_closed, std::memory_order_release);
    s.metrics.round.store(round.number, std::memory_order_relaxed);
    s.round.store(round.number, std::memory_order_release);
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
  auto scan =
      RebuildWinnerIndex(store_.fd(), shared.state(), agencies, winning_number, kScanChunkBytes,
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
