#include "common/csv.h"

#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "common/swar.h"

namespace lottery {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

bool NeedsQuotes(std::string_view field) {
  // Eight bytes at a time: find_first_of() calls memchr once per character,
  // and a byte loop was the hottest part of encoding a row.
  for (std::size_t at = 0; at < field.size(); at += 8) {
    const std::size_t n = field.size() - at < 8 ? field.size() - at : 8;
    const std::uint64_t w = LoadWordPadded(field.data() + at, n, 'a');
    if ((BytesEqual(w, ',') | BytesEqual(w, '"') | BytesEqual(w, '\r') | BytesEqual(w, '\n')) !=
        0) {
      return true;
    }
  }
  return false;
}

}  // namespace

void AppendCsvField(std::string& out, std::string_view field) {
  if (!NeedsQuotes(field)) {
    out.append(field);
    return;
  }
  out.push_back('"');
  for (char c : field) {
    if (c == '"') out.push_back('"');
    out.push_back(c);
  }
  out.push_back('"');
}

char* PutCsvField(char* p, std::string_view field) {
  if (!NeedsQuotes(field)) {
    std::memcpy(p, field.data(), field.size());
    return p + field.size();
  }
  *p++ = '"';
  for (char c : field) {
    if (c == '"') *p++ = '"';
    *p++ = c;
  }
  *p++ = '"';
  return p;
}

namespace {

// ParseCsvRecord's place in its input. Its steps return kComplete when
// their part (a field, the line end) was read whole, and otherwise what
// ParseCsvRecord returns.
struct CsvCursor {
  const char* b;
  std::size_t limit;
  bool at_eof;
  std::size_t i = 0;
};

void ResetParseState(CsvParseState& out) {
  out.storage.clear();
  out.spans.clear();
  out.lines = 0;
  out.error = nullptr;
  out.open_quote_at_end = false;
}

// From the opening quote at c.i through the closing one.
CsvParse ReadQuotedField(CsvCursor& c, CsvParseState& out) {
  ++c.i;
  while (true) {
    if (c.i >= c.limit) {
      if (!c.at_eof) return CsvParse::kNeedMore;
      out.error = "unterminated quoted field";
      out.open_quote_at_end = true;
      return CsvParse::kError;
    }
    const char ch = c.b[c.i];
    if (ch != '"') {
      if (ch == '\n') ++out.lines;
      out.storage.push_back(ch);
      ++c.i;
      continue;
    }
    if (c.i + 1 >= c.limit && !c.at_eof) return CsvParse::kNeedMore;
    // A quote as the last byte: the closing one here, the first of an
    // escaped pair if more bytes came.
    if (c.i + 1 >= c.limit) out.open_quote_at_end = true;
    if (c.i + 1 < c.limit && c.b[c.i + 1] == '"') {
      out.storage.push_back('"');
      c.i += 2;
      continue;
    }
    ++c.i;  // the closing quote
    return CsvParse::kComplete;
  }
}

// Up to the comma, the line end or the end of the input.
CsvParse ReadUnquotedField(CsvCursor& c, CsvParseState& out) {
  while (c.i < c.limit && c.b[c.i] != ',' && c.b[c.i] != '\r' && c.b[c.i] != '\n') {
    if (c.b[c.i] == '"') {
      out.error = "quote inside an unquoted field";
      return CsvParse::kError;
    }
    out.storage.push_back(c.b[c.i]);
    ++c.i;
  }
  return CsvParse::kComplete;
}

// The input ended inside the record: the last line has no line end.
CsvParse EndWithoutLineEnd(const CsvCursor& c, CsvParseState& out) {
  if (!c.at_eof) return CsvParse::kNeedMore;
  out.consumed = c.i;
  out.terminated = false;
  return CsvParse::kComplete;
}

// At a line end: CRLF, LF, or a lone CR.
CsvParse FinishLine(CsvCursor& c, CsvParseState& out) {
  if (c.b[c.i] == '\r') {
    if (c.i + 1 >= c.limit) {
      if (!c.at_eof) return CsvParse::kNeedMore;
      // "\r" at the very end: the CRLF was cut, the line is torn.
      out.consumed = c.i + 1;
      out.terminated = false;
      return CsvParse::kComplete;
    }
    c.i += c.b[c.i + 1] == '\n' ? 2 : 1;
  } else {
    ++c.i;
  }
  ++out.lines;
  out.consumed = c.i;
  out.terminated = true;
  return CsvParse::kComplete;
}

}  // namespace

CsvParse ParseCsvRecord(std::string_view input, bool at_eof, CsvParseState& out) {
  ResetParseState(out);
  CsvCursor c{input.data(), input.size(), at_eof};
  while (true) {
    const std::size_t field_start = out.storage.size();
    auto finish_field = [&] {
      out.spans.emplace_back(field_start, out.storage.size() - field_start);
    };
    if (c.i < c.limit && c.b[c.i] == '"') {
      if (CsvParse read = ReadQuotedField(c, out); read != CsvParse::kComplete) return read;
      finish_field();
      if (c.i >= c.limit) return EndWithoutLineEnd(c, out);
      if (c.b[c.i] == ',') {
        ++c.i;
        continue;
      }
      if (c.b[c.i] != '\r' && c.b[c.i] != '\n') {
        out.error = "text after a closing quote";
        return CsvParse::kError;
      }
    } else {
      if (CsvParse read = ReadUnquotedField(c, out); read != CsvParse::kComplete) return read;
      if (c.i >= c.limit) {
        if (!at_eof) return CsvParse::kNeedMore;
        finish_field();
        return EndWithoutLineEnd(c, out);
      }
      finish_field();
      if (c.b[c.i] == ',') {
        ++c.i;
        continue;
      }
    }
    return FinishLine(c, out);
  }
}

CsvReader::CsvReader(int fd, std::size_t max_record_bytes)
    : fd_(fd), max_record_bytes_(max_record_bytes) {
  buffer_.resize(kReadChunk);
}

Result<bool> CsvReader::ReadMore() {
  if (eof_) return false;
  // Keep the unread part, drop the rest, then make room for a chunk.
  if (pos_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + pos_, end_ - pos_);
    consumed_ += pos_;
    end_ -= pos_;
    pos_ = 0;
  }
  if (buffer_.size() - end_ < kReadChunk / 2) buffer_.resize(buffer_.size() + kReadChunk);
  while (true) {
    ssize_t n = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n < 0) {
      if (errno == EINTR) continue;
      return FailErrno("read");
    }
    if (n == 0) {
      eof_ = true;
      return false;
    }
    end_ += static_cast<std::size_t>(n);
    return true;
  }
}

Result<void> CsvReader::SkipLine() {
  while (true) {
    const char* nl =
        static_cast<const char*>(std::memchr(buffer_.data() + pos_, '\n', end_ - pos_));
    if (nl != nullptr) {
      pos_ = static_cast<std::size_t>(nl - buffer_.data()) + 1;
      ++line_;
      return {};
    }
    pos_ = end_;  // drop what we have; keeps memory bounded
    auto more = ReadMore();
    if (!more) return std::unexpected(more.error());
    if (!*more) return {};
  }
}

bool CsvReader::ParseUnquoted(std::size_t start, std::size_t& end) {
  const char* b = buffer_.data();
  spans_.clear();
  std::size_t field = start;
  // At the line end at `pos`: the CRLF must be whole in the buffer.
  auto finish = [&](std::size_t pos) {
    if (b[pos] == '\r' && pos + 1 >= end_) return false;
    spans_.emplace_back(field, pos - field);
    end = pos + ((b[pos] == '\r' && b[pos + 1] == '\n') ? 2 : 1);
    return true;
  };
  std::size_t i = start;
#ifdef __SSE2__
  // Sixteen bytes at a time: one mask of the bytes that matter (comma,
  // quote, CR, LF), walked bit by bit; commas land at unpredictable places,
  // so a byte loop spends its time in mispredicted branches.
  const __m128i comma = _mm_set1_epi8(','), quote = _mm_set1_epi8('"');
  const __m128i cr = _mm_set1_epi8('\r'), lf = _mm_set1_epi8('\n');
  for (; i + 16 <= end_; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const __m128i hit =
        _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                     _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0;
         mask &= mask - 1) {
      const std::size_t pos = i + static_cast<std::size_t>(__builtin_ctz(mask));
      const char c = b[pos];
      if (c == ',') {
        spans_.emplace_back(field, pos - field);
        field = pos + 1;
        continue;
      }
      if (c == '"') return false;
      return finish(pos);
    }
  }
#endif
  for (; i < end_; ++i) {
    const char c = b[i];
    if (c == ',') {
      spans_.emplace_back(field, i - field);
      field = i + 1;
    } else if (c == '\n' || c == '\r') {
      return finish(i);
    } else if (c == '"') {
      return false;
    }
  }
  return false;  // no line end in the buffer yet
}

CsvReader::Parse CsvReader::ParseRecord(std::size_t start, std::size_t& end, std::uint64_t& lines,
                                        std::string& error) {
  // Most records have no quotes and sit whole in the buffer: their fields
  // are views into it, nothing is copied.
  if (ParseUnquoted(start, end)) {
    lines = 1;
    spans_in_buffer_ = true;
    record_.terminated = true;
    return Parse::kComplete;
  }
  spans_in_buffer_ = false;
  switch (ParseCsvRecord(std::string_view(buffer_.data() + start, end_ - start), eof_, parsed_)) {
    case CsvParse::kNeedMore: return Parse::kNeedMore;
    case CsvParse::kError: error = parsed_.error; return Parse::kError;
    case CsvParse::kComplete: break;
  }
  end = start + parsed_.consumed;
  lines = parsed_.lines;
  record_.terminated = parsed_.terminated;
  return Parse::kComplete;
}

Result<void> CsvReader::SkipByteOrderMark() {
  while (end_ - pos_ < 3 && !eof_) {
    auto more = ReadMore();
    if (!more) return std::unexpected(more.error());
  }
  if (end_ - pos_ >= 3 && std::memcmp(buffer_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
  return {};
}

Result<bool> CsvReader::SkipBlankLines() {
  while (true) {
    if (pos_ >= end_) {
      auto more = ReadMore();
      if (!more) return std::unexpected(more.error());
      if (!*more) return false;
      continue;
    }
    char c = buffer_[pos_];
    if (c == '\n') {
      ++pos_;
      ++line_;
    } else if (c == '\r') {
      if (pos_ + 1 >= end_ && !eof_) {
        auto more = ReadMore();
        if (!more) return std::unexpected(more.error());
        continue;
      }
      pos_ += (pos_ + 1 < end_ && buffer_[pos_ + 1] == '\n') ? 2 : 1;
      ++line_;
    } else {
      return true;
    }
  }
}

Result<std::optional<CsvRecord*>> CsvReader::RefuseRecord(std::string error) {
  record_.fields.clear();
  record_.line = line_;
  record_.offset = consumed_ + pos_;
  record_.error = std::move(error);
  if (auto s = SkipLine(); !s) return std::unexpected(s.error());
  record_.end_offset = consumed_ + pos_;
  return std::optional<CsvRecord*>(&record_);
}

void CsvReader::TakeFields() {
  if (spans_in_buffer_) {
    for (auto [from, len] : spans_) record_.fields.emplace_back(buffer_.data() + from, len);
    return;
  }
  for (auto [from, len] : parsed_.spans) {
    record_.fields.emplace_back(parsed_.storage.data() + from, len);
  }
}

Result<std::optional<CsvRecord*>> CsvReader::Next() {
  if (at_start_) {
    if (auto skipped = SkipByteOrderMark(); !skipped) return std::unexpected(skipped.error());
    at_start_ = false;
  }
  while (true) {
    auto more = SkipBlankLines();
    if (!more) return std::unexpected(more.error());
    if (!*more) return std::optional<CsvRecord*>();
    std::size_t end = 0;
    std::uint64_t lines = 0;
    std::string error;
    record_.error.reset();
    record_.terminated = true;
    Parse p = ParseRecord(pos_, end, lines, error);
    if (p == Parse::kNeedMore) {
      if (end_ - pos_ > max_record_bytes_) {
        return RefuseRecord(fmt::format("record longer than {} bytes", max_record_bytes_));
      }
      auto read = ReadMore();
      if (!read) return std::unexpected(read.error());
      continue;  // parse the same record again with more bytes
    }
    if (p == Parse::kError) return RefuseRecord(std::move(error));
    record_.line = line_;
    record_.offset = consumed_ + pos_;
    record_.fields.clear();
    if (end - pos_ > max_record_bytes_) {
      record_.error = fmt::format("record longer than {} bytes", max_record_bytes_);
    } else {
      TakeFields();
    }
    pos_ = end;
    line_ += lines;
    record_.end_offset = consumed_ + pos_;
    return std::optional<CsvRecord*>(&record_);
  }
}

}  // namespace lottery
