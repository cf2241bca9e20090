#include "storage/winner_scan.h"

#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string_view>
#include <utility>

#include "common/csv.h"
#include "storage/bets_file_row.h"
#include "wire/bet.h"

namespace lottery {
namespace {

// Records longer than this (line end included) are skipped: CsvReader's
// default limit, which ForEachBet uses.
constexpr std::size_t kMaxRecordBytes = 64 * 1024;
constexpr std::size_t kWordPad = 8;

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Eight bytes as one word, the first byte in the lowest bits.
std::uint64_t LoadWord(const char* p) {
  std::uint64_t word;
  std::memcpy(&word, p, sizeof word);
  if constexpr (std::endian::native == std::endian::big) word = std::byteswap(word);
  return word;
}

// The bytes of `word` equal to `c`: their top bit set, every other bit clear
// (exact: no carry runs from one byte into the next).
std::uint64_t BytesEqual(std::uint64_t word, char c) {
  constexpr std::uint64_t kLow7 = 0x7F7F7F7F7F7F7F7F;
  const std::uint64_t x = word ^ (0x0101010101010101 * static_cast<unsigned char>(c));
  return ~(((x & kLow7) + kLow7) | x | kLow7);
}

// How many bytes BytesEqual marked. (std::popcount is a library call on the
// baseline x86-64 target, a multiply is not.)
std::uint64_t CountMarked(std::uint64_t marks) { return ((marks >> 7) * 0x0101010101010101) >> 56; }

// One pass over the file. Positions are indices into buffer_; the unread
// bytes [pos_, end_) move to the front before each read, so a record that
// straddles two reads is whole when it is parsed.
class Scanner {
 public:
  Scanner(int fd, std::uint32_t agencies, std::uint32_t winning_number, std::size_t chunk_bytes,
          std::uint64_t begin, std::optional<std::uint64_t> digest_from)
      : fd_(fd),
        agencies_(agencies),
        winning_number_(winning_number),
        chunk_(std::max<std::size_t>(chunk_bytes, 1)),
        // A read happens only with at most kMaxRecordBytes unread bytes kept,
        // so there is always room for a whole chunk.
        capacity_(chunk_ + kMaxRecordBytes + 1),
        // kWordPad: the fast path reads whole words, up to 7 bytes past a line.
        buffer_(std::make_unique_for_overwrite<char[]>(capacity_ + kWordPad)),
        file_offset_(begin),
        at_file_start_(begin == 0),
        digest_from_(digest_from) {
    result_.winners.resize(static_cast<std::size_t>(agencies) + 1);
    if (digest_from_) result_.rows.resize(static_cast<std::size_t>(agencies) + 1);
  }

  Result<WinnerScan> Run();

 private:
  // Reads the next chunk after the unread bytes. Returns false at the end of
  // the file.
  Result<bool> ReadMore();
  // Skips past the next LF at or after pos_ (or to the end of the file).
  Status SkipLine();
  // The fast path: when the line at pos_ is a row as the writer writes it
  // (see TakePlainRow's body) that cannot win, counts it, moves past it and
  // returns true.
  bool TakePlainRow();
  // The slow path: one record at pos_ by CsvReader's and StoredRecordToBet's
  // rules. Returns false when it needs a read first.
  Result<bool> TakeRecord();
  // Counts one well-formed bet; returns whether its agency is in 1..agencies.
  bool Count(std::uint32_t agency);
  // With digest_from_: adds the bet of `agency` (in 1..agencies) whose line
  // is `line` (line end included), starting at buffer index `at`, to its
  // agency's rows when it lies at or after digest_from_.
  void Digest(std::uint32_t agency, std::size_t at, std::string_view line);
  // What the draw does with one well-formed bet: counts it, keeps its
  // document when it wins.
  void Tally(const BetView& bet);

  const int fd_;
  const std::uint32_t agencies_;
  const std::uint32_t winning_number_;
  const std::size_t chunk_;
  const std::size_t capacity_;
  std::unique_ptr<char[]> buffer_;
  std::uint64_t file_offset_;  // where the next read starts
  const bool at_file_start_;   // the scan begins at offset 0 (a BOM may be there)
  const std::optional<std::uint64_t> digest_from_;
  std::size_t pos_ = 0;  // next unread byte
  std::size_t end_ = 0;  // end of the bytes read
  bool eof_ = false;
  // The slow path's record, reused (ParseCsvRecord, common/csv.h).
  CsvParseState parsed_;
  CsvRecord record_;
  WinnerScan result_;
};

Result<bool> Scanner::ReadMore() {
  if (eof_) return false;
  if (pos_ > 0) {
    std::memmove(buffer_.get(), buffer_.get() + pos_, end_ - pos_);
    end_ -= pos_;
    pos_ = 0;
  }
  const std::size_t want = std::min(chunk_, capacity_ - end_);
  while (true) {
    ssize_t n = ::pread(fd_, buffer_.get() + end_, want, static_cast<off_t>(file_offset_));
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno("read bets file");
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += static_cast<std::size_t>(n);
    file_offset_ += static_cast<std::uint64_t>(n);
    return true;
  }
}

Status Scanner::SkipLine() {
  while (true) {
    const char* b = buffer_.get();
    const void* lf = std::memchr(b + pos_, '\n', end_ - pos_);
    if (lf != nullptr) {
      pos_ = static_cast<std::size_t>(static_cast<const char*>(lf) - b) + 1;
      return Ok();
    }
    pos_ = end_;  // drop it: memory stays bounded however long the line is
    auto more = ReadMore();
    if (!more) return std::unexpected(more.error());
    if (!*more) return Ok();
  }
}

bool Scanner::TakePlainRow() {
  // The row as the writer writes it: agency (1 to 9 digits, not 0), a comma,
  // four fields with neither quote nor CR, a comma, number (1 to 4 digits),
  // CRLF, at most kMaxRecordBytes in all. CsvReader splits such a line at its
  // commas, and StoredRecordToBet accepts it with these very agency and
  // number values. Every other line takes the slow path.
  const char* line = buffer_.get() + pos_;
  const void* lf = std::memchr(line, '\n', std::min(end_ - pos_, kMaxRecordBytes));
  if (lf == nullptr) return false;
  const std::size_t len = static_cast<std::size_t>(static_cast<const char*>(lf) - line);
  std::size_t i = 0;
  std::uint32_t agency = 0;
  while (i < len && i < 9 && IsDigit(line[i])) {
    agency = agency * 10 + static_cast<std::uint32_t>(line[i] - '0');
    ++i;
  }
  if (i == 0 || agency == 0 || i >= len || line[i] != ',') return false;
  // The number, backwards from the CR.
  if (line[len - 1] != '\r') return false;
  std::size_t number_at = len - 1;
  while (number_at > i + 1 && len - 1 - number_at < 4 && IsDigit(line[number_at - 1])) --number_at;
  if (number_at == len - 1 || line[number_at - 1] != ',') return false;
  std::uint32_t number = 0;
  for (std::size_t j = number_at; j < len - 1; ++j) {
    number = number * 10 + static_cast<std::uint32_t>(line[j] - '0');
  }
  // HasWon (bet.h) is decided by the number alone: a row with the winning
  // number may win and takes the slow path, which records its document. They
  // are about one in 10,000.
  if (number == winning_number_) return false;
  // The four fields between: exactly three commas, no quote, no CR. A word
  // at a time and without branches, so that where the commas fall costs no
  // mispredicted jump.
  const std::size_t from = i + 1;
  const std::size_t to = number_at - 1;
  std::uint64_t commas = 0;
  std::uint64_t forbidden = 0;
  for (std::size_t j = from; j < to; j += 8) {
    const std::uint64_t word = LoadWord(line + j);
    const std::uint64_t keep =
        to - j >= 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * (to - j))) - 1;
    forbidden |= (BytesEqual(word, '"') | BytesEqual(word, '\r')) & keep;
    commas += CountMarked(BytesEqual(word, ',') & keep);
  }
  if (forbidden != 0 || commas != 3) return false;
  if (Count(agency) && digest_from_) Digest(agency, pos_, std::string_view(line, len + 1));
  pos_ += len + 1;
  return true;
}

Result<bool> Scanner::TakeRecord() {
  // Parsing stops one byte past the limit, so an unterminated quote costs at
  // most kMaxRecordBytes of parsing, not the rest of the buffer.
  const std::size_t limit = std::min(end_, pos_ + kMaxRecordBytes + 1);
  const bool at_eof = eof_ && limit == end_;
  switch (ParseCsvRecord(std::string_view(buffer_.get() + pos_, limit - pos_), at_eof, parsed_)) {
    case CsvParse::kNeedMore:
      if (limit - pos_ <= kMaxRecordBytes) return false;
      ++result_.skipped;  // too long
      if (Status s = SkipLine(); !s) return std::unexpected(s.error());
      return true;
    case CsvParse::kError:
      ++result_.skipped;
      if (parsed_.open_quote_at_end) result_.torn_end = true;
      if (Status s = SkipLine(); !s) return std::unexpected(s.error());
      return true;
    case CsvParse::kComplete: break;
  }
  const std::size_t record_start = pos_;
  const std::size_t record_end = pos_ + parsed_.consumed;
  if (record_end - pos_ > kMaxRecordBytes) {
    ++result_.skipped;  // too long
    if (Status s = SkipLine(); !s) return std::unexpected(s.error());
    return true;
  }
  pos_ = record_end;
  if (!parsed_.terminated) {
    ++result_.skipped;  // a torn last line
    result_.torn_end = true;
    return true;
  }
  record_.fields.clear();
  for (auto [from, len] : parsed_.spans) {
    record_.fields.emplace_back(parsed_.storage.data() + from, len);
  }
  auto bet = StoredRecordToBet(record_);
  if (!bet) {
    ++result_.skipped;
    return true;
  }
  Tally(*bet);
  if (digest_from_ && bet->agency >= 1 && bet->agency <= agencies_) {
    Digest(bet->agency, record_start,
           std::string_view(buffer_.get() + record_start, record_end - record_start));
  }
  return true;
}

void Scanner::Digest(std::uint32_t agency, std::size_t at, std::string_view line) {
  // The buffer holds the file's bytes [file_offset_ - end_, file_offset_).
  if (file_offset_ - end_ + at < *digest_from_) return;
  // The server writes `<agency>,<bet row>\r\n`: the row lies between.
  const std::size_t comma = line.find(',');
  std::size_t stop = line.size();
  if (stop > 0 && line[stop - 1] == '\n') --stop;
  if (stop > 0 && line[stop - 1] == '\r') --stop;
  if (comma == std::string_view::npos || comma >= stop) return;
  result_.rows[agency].Add(line.substr(comma + 1, stop - comma - 1));
}

bool Scanner::Count(std::uint32_t agency) {
  ++result_.bets;
  if (agency >= 1 && agency <= agencies_) return true;
  ++result_.foreign;
  return false;
}

void Scanner::Tally(const BetView& bet) {
  if (Count(bet.agency) && HasWon(bet, winning_number_)) {
    result_.winners[bet.agency].emplace_back(bet.document);
  }
}

Result<WinnerScan> Scanner::Run() {
  // A UTF-8 BOM at the very start is skipped, as CsvReader does.
  while (at_file_start_ && end_ - pos_ < 3 && !eof_) {
    if (auto more = ReadMore(); !more) return std::unexpected(more.error());
  }
  if (at_file_start_ && end_ - pos_ >= 3 &&
      std::memcmp(buffer_.get() + pos_, "\xEF\xBB\xBF", 3) == 0)
    pos_ += 3;
  while (true) {
    if (pos_ >= end_) {
      auto more = ReadMore();
      if (!more) return std::unexpected(more.error());
      if (!*more) return std::move(result_);
      continue;
    }
    // Blank lines (LF, CRLF, a lone CR) are skipped without counting.
    const char c = buffer_[pos_];
    if (c == '\n') {
      ++pos_;
      continue;
    }
    if (c == '\r') {
      if (pos_ + 1 >= end_ && !eof_) {
        if (auto more = ReadMore(); !more) return std::unexpected(more.error());
        continue;
      }
      pos_ += (pos_ + 1 < end_ && buffer_[pos_ + 1] == '\n') ? 2 : 1;
      continue;
    }
    if (TakePlainRow()) continue;
    auto taken = TakeRecord();
    if (!taken) return std::unexpected(taken.error());
    if (!*taken) {
      if (auto more = ReadMore(); !more) return std::unexpected(more.error());
    }
  }
}

}  // namespace

namespace {

// Whether `offset` of the file behind `fd` is where a record starts: the
// file's start, or just after a line end.
[[maybe_unused]] bool StartsRecord(int fd, std::uint64_t offset) {
  char before = '\n';
  return offset == 0 ||
         (::pread(fd, &before, 1, static_cast<off_t>(offset - 1)) == 1 && before == '\n');
}

}  // namespace

Result<WinnerScan> ScanWinners(int fd, std::uint32_t agencies, std::uint32_t winning_number,
                               std::size_t chunk_bytes, std::uint64_t begin,
                               std::optional<std::uint64_t> digest_from) {
  assert(StartsRecord(fd, begin));
  return Scanner(fd, agencies, winning_number, chunk_bytes, begin, digest_from).Run();
}

}  // namespace lottery
