// CSV in the one dialect this project reads and writes: RFC 4180 with
// minimal quoting (a field is quoted only when it holds a comma, a double
// quote, CR or LF; quotes inside are doubled). It knows nothing of bets: the
// bets-file row (storage/bets_file_row.h) and the dataset row
// (agency/dataset_reader.h) are built on it.
#pragma once

#include <cassert>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace lottery {

// Appends one field with minimal quoting.
void AppendCsvField(std::string& out, std::string_view field);

// Writes one field with minimal quoting at `p` and returns the end. Room
// for 2 * field.size() + 2 bytes must be there.
char* PutCsvField(char* p, std::string_view field);

enum class CsvParse { kComplete, kNeedMore, kError };

// The parse of one record, reused from call to call so that parsing does not
// allocate per record.
struct CsvParseState {
  std::string storage;                                     // the unescaped bytes of every field
  std::vector<std::pair<std::size_t, std::size_t>> spans;  // (offset, size) in storage
  std::size_t consumed = 0;     // bytes of input the record took, line end included
  std::uint64_t lines = 0;      // line ends consumed (a quoted line break counts)
  bool terminated = true;       // false: the input ended without a line end
  const char* error = nullptr;  // why the record does not parse (kError)
  // The input ended inside a quoted field (at_eof): more bytes after this
  // end would have been read as part of the field.
  bool open_quote_at_end = false;
};

// The dialect's one parser: parses the record at the start of `input`.
// kNeedMore when `input` ends inside the record and more can come (`at_eof`
// false); at the end of input a record without its line end is kComplete
// with `terminated` false (a torn last line). CsvReader and the draw's
// scanner (storage/winner_scan.h) both use it.
CsvParse ParseCsvRecord(std::string_view input, bool at_eof, CsvParseState& out);

// One parsed record. The field views point into the reader's buffer and stay
// valid only until the next call to Next().
struct CsvRecord {
  std::vector<std::string_view> fields;
  std::uint64_t line = 0;            // 1-based line where the record starts
  std::uint64_t offset = 0;          // byte offset of the record's first byte
  std::uint64_t end_offset = 0;      // byte offset just past its line end
  bool terminated = true;            // false: the input ended without a line end
  std::optional<std::string> error;  // set when the record does not parse
};

// Reads records from a file descriptor, streaming: memory is bounded by the
// longest record (at most max_record_bytes; longer ones are reported as an
// error and skipped). The reader does not own the descriptor. A UTF-8 BOM at
// the very start is skipped. Blank lines are skipped.
class CsvReader {
 public:
  explicit CsvReader(int fd, std::size_t max_record_bytes = 64 * 1024);

  // Returns the next record, std::nullopt at end of input, or an Error when
  // the descriptor fails. A record that does not parse comes back with
  // `error` set and the reader resumes at the following line.
  Result<std::optional<CsvRecord*>> Next();

  // For a caller that can use a line as it is (an agency sends a dataset row
  // that is already a bet row, wire/bet_row.h): the next line's bytes, line
  // end (LF or CRLF) excluded, when that whole line is in the buffer; else
  // std::nullopt, and Next() reads it. The view is valid until the next call
  // of any method. TakePeekedLine() consumes it; not taking it leaves it to
  // Next(), which parses the same line as a record.
  // Inline: an agency calls them for every line.
  std::optional<std::string_view> PeekLine() {
    if (at_start_ || pos_ >= end_) return std::nullopt;  // the BOM check, or a read, first
    const char* base = buffer_.data();
    const void* lf = std::memchr(base + pos_, '\n', end_ - pos_);
    if (lf == nullptr) return std::nullopt;
    const std::size_t nl = static_cast<std::size_t>(static_cast<const char*>(lf) - base);
    std::size_t stop = nl;
    if (stop > pos_ && base[stop - 1] == '\r') --stop;
    peeked_end_ = nl + 1;
    return std::string_view(base + pos_, stop - pos_);
  }
  void TakePeekedLine() {
    pos_ = peeked_end_;
    ++line_;
  }
  // For a caller that finds whole lines itself: the buffered input not yet
  // taken (empty before the first Next() has looked for a byte order mark),
  // valid until the next call of any method. TakeLine(size) consumes the
  // first `size` bytes of it, which must be one whole line, its end
  // included (that it is no more than Buffered() holds is asserted).
  std::string_view Buffered() const {
    return at_start_ ? std::string_view() : std::string_view(buffer_.data() + pos_, end_ - pos_);
  }
  void TakeLine(std::size_t size) {
    assert(!at_start_ && size <= end_ - pos_);
    pos_ += size;
    ++line_;
  }

 private:
  enum class Parse { kComplete, kNeedMore, kError };
  // Parses the record starting at buffer_[start] into record_; sets `end` to
  // the position after it and `lines` to the line ends it consumed.
  Parse ParseRecord(std::size_t start, std::size_t& end, std::uint64_t& lines, std::string& error);
  // The fast path of ParseRecord: a record without quotes whose line end is
  // in the buffer. Fills spans_ with offsets into buffer_; false when the
  // record needs the general parser.
  bool ParseUnquoted(std::size_t start, std::size_t& end);
  // Reads more input after end_. Returns false at end of input.
  Result<bool> ReadMore();
  // Skips to just past the next LF (reading as needed); for records that do
  // not parse or are too long.
  Result<void> SkipLine();
  // Next's steps. Drops a UTF-8 byte order mark at the start of the input.
  Result<void> SkipByteOrderMark();
  // Skips blank lines; false at the end of input.
  Result<bool> SkipBlankLines();
  // record_ as a record that is refused with `error` (its line skipped).
  Result<std::optional<CsvRecord*>> RefuseRecord(std::string error);
  // Fills record_.fields from the parsed spans (views, no copy).
  void TakeFields();

  int fd_;
  std::size_t max_record_bytes_;
  std::string buffer_;
  std::size_t pos_ = 0;  // next unread byte in buffer_
  std::size_t end_ = 0;  // end of valid bytes in buffer_
  bool eof_ = false;
  bool at_start_ = true;                                    // BOM not checked yet
  std::uint64_t line_ = 1;                                  // line of buffer_[pos_]
  std::uint64_t consumed_ = 0;                              // input bytes before buffer_[0]
  std::vector<std::pair<std::size_t, std::size_t>> spans_;  // fields in buffer_ (ParseUnquoted)
  std::size_t peeked_end_ = 0;    // just past the LF of the line PeekLine returned
  bool spans_in_buffer_ = false;  // the record's fields are spans_, not parsed_
  CsvParseState parsed_;          // the general parser's record
  CsvRecord record_;
};

}  // namespace lottery
