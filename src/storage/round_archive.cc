// The archive of drawn rounds (storage/rounds.h): opening the next round,
// finishing an interrupted open at start-up, listing and verifying archived
// rounds, and the journal records the parent writes.
#include "storage/rounds.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>

#include <fmt/format.h>

#include "common/crash_point.h"
#include "common/csv.h"
#include "common/file_io.h"
#include "common/unique_fd.h"
#include "storage/batch_journal.h"
#include "storage/bet_store.h"
#include "storage/bets_file_row.h"
#include "storage/file_lock.h"
#include "wire/bet.h"

namespace lottery {
namespace {

Status MakeDirectory(const std::string& dir) {
  if (::mkdir(dir.c_str(), 0750) != 0 && errno != EEXIST) return FailErrno("mkdir " + dir);
  return Ok();
}

bool Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// Hard-links `from` as `to`; a `to` that already is `from` (an open that was
// interrupted and is done again) is fine, another file there is not.
Status LinkInto(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return Ok();
  if (errno != EEXIST) return FailErrno(fmt::format("link {} to {}", from, to));
  struct stat a, b;
  if (::stat(from.c_str(), &a) == 0 && ::stat(to.c_str(), &b) == 0 && a.st_ino == b.st_ino &&
      a.st_dev == b.st_dev) {
    return Ok();
  }
  return Fail(ErrorKind::kConfig,
              fmt::format("{} already exists and is not {}: the archive holds another round "
                          "with this number",
                          to, from));
}

// Appends one record to the journal behind `journal_fd` and syncs it.
Status AppendJournalDurably(const FileLock& flocked, int journal_fd, const JournalRecord& record) {
  if (Status a = AppendJournalRecord(flocked, journal_fd, record); !a) return a;
  if (::fdatasync(journal_fd) != 0) return FailErrno("fdatasync journal");
  return Ok();
}

// What the round files on disk say, for ListArchivedRounds: bets from the
// journal's batch records when there is no result.
std::uint64_t JournalBets(const std::string& journal_path) {
  auto bytes = ReadFileBytes(journal_path);
  if (!bytes) return 0;
  std::uint64_t bets = 0;
  for (std::size_t at = 0; at + kJournalRecordSize <= bytes->size(); at += kJournalRecordSize) {
    auto record = DecodeJournalRecord(bytes->data() + at);
    if (!record) break;
    if (record->kind == JournalKind::kBatch) bets += record->count;
  }
  return bets;
}

// The bets and winners of a bets file, read with the reference reader
// (CsvReader and StoredRecordToBet), independent of the draw's fast scan.
struct RecountedRound {
  std::vector<std::uint64_t> bets;  // per agency, 1..N
  std::vector<std::vector<std::string>> winners;
  std::uint64_t unreadable = 0;  // lines that are not bets of agencies 1..N
};

Result<RecountedRound> Recount(int fd, std::uint32_t agencies, std::uint32_t winning_number) {
  RecountedRound out;
  out.bets.assign(agencies + 1, 0);
  out.winners.assign(agencies + 1, {});
  CsvReader reader(fd);
  while (true) {
    auto next = reader.Next();
    if (!next) return std::unexpected(next.error());
    if (!*next) return out;
    const CsvRecord& record = ***next;
    auto bet = record.error ? Result<BetView>(Fail(ErrorKind::kCorruptData, *record.error))
                            : StoredRecordToBet(record);
    if (!bet || bet->agency == 0 || bet->agency > agencies || !record.terminated) {
      ++out.unreadable;
      continue;
    }
    ++out.bets[bet->agency];
    if (HasWon(*bet, winning_number)) out.winners[bet->agency].emplace_back(bet->document);
  }
}

}  // namespace

Result<std::vector<RoundSummary>> ListArchivedRounds(const std::string& storage_path) {
  std::vector<RoundSummary> rounds;
  const std::string root = ArchiveRoot(storage_path);
  struct CloseDir {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, CloseDir> dir(::opendir(root.c_str()));
  if (!dir) {
    if (errno == ENOENT) return rounds;
    return FailErrno("opendir " + root);
  }
  while (const dirent* entry = ::readdir(dir.get())) {
    const std::string name = entry->d_name;
    if (name.empty() || name.size() > 19 ||
        !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    const std::uint64_t number = std::stoull(name);
    const RoundFiles files = ArchivedRoundFiles(storage_path, number);
    if (!Exists(files.journal)) continue;  // an open that did not finish: not archived yet
    RoundSummary summary{number, RoundState::kArchived, 0, 0, 0};
    if (auto result = ReadRoundResult(files.result)) {
      summary.bets = result->bets;
      summary.winners = result->winner_count();
      summary.drawn_at = result->drawn_at;
    } else {
      summary.bets = JournalBets(files.journal);
    }
    rounds.push_back(summary);
  }
  std::sort(rounds.begin(), rounds.end(),
            [](const RoundSummary& a, const RoundSummary& b) { return a.number < b.number; });
  return rounds;
}

Result<RoundVerification> VerifyRound(const std::string& storage_path, std::uint64_t number) {
  const RoundFiles files = ArchivedRoundFiles(storage_path, number);
  if (!Exists(files.journal)) {
    return Fail(ErrorKind::kConfig,
                fmt::format("round {} is not archived ({} is missing)", number, files.journal));
  }
  auto recorded = ReadRoundResult(files.result);
  if (!recorded) return std::unexpected(recorded.error());
  RoundVerification v;
  v.recorded = std::move(*recorded);
  const RoundResult& r = v.recorded;
  auto differ = [&v](std::string what) { v.differences.push_back(std::move(what)); };
  if (r.round != number) differ(fmt::format("the result is of round {}, not {}", r.round, number));
  UniqueFd fd(::open(files.bets.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return FailErrno("open " + files.bets);
  auto size = FileSize(fd.get());
  if (!size) return std::unexpected(size.error());
  if (*size != r.bets_file_size) {
    differ(fmt::format("the bets file has {} bytes; the draw read {}", *size, r.bets_file_size));
  }
  auto sha = Sha256OfFile(fd.get(), std::min(*size, r.bets_file_size));
  if (!sha) return std::unexpected(sha.error());
  if (*sha != r.bets_sha256) {
    differ(fmt::format("SHA-256 of the bets file is {}; the result records {}", Sha256Hex(*sha),
                       Sha256Hex(r.bets_sha256)));
  }
  auto recount = Recount(fd.get(), r.agencies(), r.winning_number);
  if (!recount) return std::unexpected(recount.error());
  std::uint64_t bets = 0;
  for (std::uint32_t a = 1; a <= r.agencies(); ++a) {
    if (!r.took_part[a]) continue;
    bets += recount->bets[a];
    if (recount->winners[a] != r.winners[a]) {
      differ(fmt::format("agency {}: {} winners in the bets file, {} in the result", a,
                         recount->winners[a].size(), r.winners[a].size()));
    }
  }
  if (bets != r.bets)
    differ(fmt::format("{} bets in the bets file, {} in the result", bets, r.bets));
  if (recount->unreadable > 0) {
    differ(fmt::format("{} lines of the bets file are not bets", recount->unreadable));
  }
  return v;
}

Status ArchiveAndStartNext(const std::string& storage_path, std::uint64_t number) {
  const RoundFiles current = CurrentRoundFiles(storage_path);
  const RoundFiles archived = ArchivedRoundFiles(storage_path, number);
  const std::string round_dir = DirectoryOf(archived.bets);
  if (Status s = MakeDirectory(ArchiveRoot(storage_path)); !s) return s;
  if (Status s = MakeDirectory(round_dir); !s) return s;
  // Links first, the journal last: an archive with its journal is whole
  // (FinishInterruptedOpen relies on that).
  if (Exists(current.result)) {
    if (Status s = LinkInto(current.result, archived.result); !s) return s;
  }
  if (Status s = LinkInto(current.bets, archived.bets); !s) return s;
  if (Status s = SyncDirectory(round_dir); !s) return s;
  CRASH_POINT("open_before_archive_journal");
  if (Status s = LinkInto(current.journal, archived.journal); !s) return s;
  if (Status s = SyncDirectory(round_dir); !s) return s;
  if (Status s = SyncDirectory(ArchiveRoot(storage_path)); !s) return s;
  CRASH_POINT("open_archived");
  return StartFreshRound(storage_path, number + 1);
}

Status StartFreshRound(const std::string& storage_path, std::uint64_t number) {
  const RoundFiles current = CurrentRoundFiles(storage_path);
  std::string start;
  EncodeJournalRecord(start, JournalRecord{JournalKind::kRoundStart, 0, 0, number, 0});
  const std::string next_bets = current.bets + ".next";
  {
    UniqueFd fd(::open(next_bets.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kBetsFileMode));
    if (!fd) return FailErrno("open " + next_bets);
    if (::fchmod(fd.get(), kBetsFileMode) != 0 || ::fsync(fd.get()) != 0) {
      return FailErrno("sync " + next_bets);
    }
  }
  if (::unlink(current.result.c_str()) != 0 && errno != ENOENT) {
    return FailErrno("unlink " + current.result);
  }
  if (::rename(next_bets.c_str(), current.bets.c_str()) != 0)
    return FailErrno("rename " + next_bets);
  CRASH_POINT("open_new_bets_file");
  // The commit point: the journal names the new round.
  return ReplaceFileDurably(current.journal, start, kBetsFileMode);
}

Result<std::optional<std::uint64_t>> FinishInterruptedOpen(const std::string& storage_path) {
  const RoundFiles current = CurrentRoundFiles(storage_path);
  auto bytes = ReadFileBytes(current.journal);
  if (!bytes || bytes->size() < kJournalRecordSize) return std::optional<std::uint64_t>();
  auto first = DecodeJournalRecord(bytes->data());
  if (!first || first->kind != JournalKind::kRoundStart) return std::optional<std::uint64_t>();
  const std::uint64_t number = first->seq;
  const std::size_t last_at =
      bytes->size() - bytes->size() % kJournalRecordSize - kJournalRecordSize;
  auto last = DecodeJournalRecord(bytes->data() + last_at);
  const bool archived = Exists(ArchivedRoundFiles(storage_path, number).journal);
  // A round drawn by a release without result files: archived as it is.
  const bool legacy_drawn =
      last && last->kind == JournalKind::kRoundComplete && !Exists(current.result);
  if (!archived && !legacy_drawn) return std::optional<std::uint64_t>();
  if (Status s = archived ? StartFreshRound(storage_path, number + 1)
                          : ArchiveAndStartNext(storage_path, number);
      !s) {
    return std::unexpected(s.error());
  }
  return std::optional<std::uint64_t>(number + 1);
}

Result<std::uint64_t> OpenNextRound(const std::string& storage_path, SharedSegment& shared) {
  SharedState& s = shared.state();
  std::uint64_t number = 0;
  {
    SharedLock lock(s);
    number = s.round.load(std::memory_order_relaxed);
    if (s.draw_state != DrawState::kDone) {
      return Fail(
          ErrorKind::kBusy,
          fmt::format("round {} is {}, not drawn; the next round can be opened after "
                      "the draw",
                      number,
                      s.betting_closed || s.finished_count >= s.agencies ? "closed" : "open"));
    }
  }
  // The flock keeps appends out while the files move (none is due: the
  // round is drawn), and BeginRound's new round number turns away a worker
  // that still holds the old file.
  UniqueFd fd(::open(storage_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd) return FailErrno("open " + storage_path);
  FileLock lock(fd.get());
  if (!lock.ok()) return FailErrno("flock " + storage_path);
  if (Status moved = ArchiveAndStartNext(storage_path, number); !moved) {
    return std::unexpected(moved.error());
  }
  BeginRound(s, number + 1);
  return number + 1;
}

Result<BettingClosure> CloseBettingDurably(const std::string& storage_path, SharedSegment& shared) {
  UniqueFd data(::open(storage_path.c_str(), O_RDWR | O_CLOEXEC));
  if (!data) return FailErrno("open " + storage_path);
  UniqueFd journal(::open(CurrentRoundFiles(storage_path).journal.c_str(), O_RDWR | O_CLOEXEC));
  if (!journal) return FailErrno("open " + storage_path + ".journal");
  // Under the flock, as FINISHED is journaled: the journal's order of the
  // two is the segment's.
  FileLock lock(data.get());
  if (!lock.ok()) return FailErrno("flock " + storage_path);
  bool drawn = false;
  {
    SharedLock guard(shared.state());
    drawn = shared.state().draw_state == DrawState::kDone;
  }
  if (!IsBettingClosed(shared.state()) && !drawn) {
    auto size = FileSize(data.get());
    if (!size) return std::unexpected(size.error());
    if (Status a = AppendJournalDurably(lock, journal.get(),
                                        JournalRecord{JournalKind::kBettingClosed, 0, 0, 0, *size});
        !a) {
      return std::unexpected(a.error());
    }
  }
  return CloseBetting(shared.state());
}

}  // namespace lottery
