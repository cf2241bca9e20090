#include "csv.h"

#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <cerrno>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace lottery {
namespace {

constexpr std::size_t kReadChunk = 64 * 1024;

bool NeedsQuotes(std::string_view field) {
  // A plain loop: find_first_of() calls memchr once per character.
  for (char c : field) {
    if (c == ',' || c == '"' || c == '\r' || c == '\n') return true;
  }
  return false;
}


// 1..4 ASCII digits, value 0..9999.
std::optional<std::uint32_t> ParseBetNumber(std::string_view text) {
  if (text.empty() || text.size() > 4) return std::nullopt;
  std::uint32_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint32_t>(c - '0');
  }
  return v;
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

namespace {

// Writes one field with minimal quoting at `p`; returns the end. Room for
// 2 * size + 2 bytes must be there.
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

char* PutUnsigned(char* p, std::uint32_t v) {
  return std::to_chars(p, p + 10, v).ptr;
}

}  // namespace

void AppendBetRow(std::string& out, const BetView& bet) {
  // Hot path of every stored bet: one resize for the worst case, then plain
  // pointer writes (no fmt, no append per field).
  const std::size_t worst = 10 + 1 + 2 * bet.first_name.size() + 3 + 2 * bet.last_name.size() + 3 +
                            2 * bet.document.size() + 3 + 2 * bet.birthdate.size() + 3 + 10 + 2;
  const std::size_t start = out.size();
  // The lambda returns the real end (libstdc++ 12 passes it the capacity,
  // not start + worst, so that argument is not used).
  out.resize_and_overwrite(start + worst, [&](char* base, std::size_t) {
    char* p = base + start;
    p = PutUnsigned(p, bet.agency);
    *p++ = ',';
    p = PutCsvField(p, bet.first_name);
    *p++ = ',';
    p = PutCsvField(p, bet.last_name);
    *p++ = ',';
    p = PutCsvField(p, bet.document);
    *p++ = ',';
    p = PutCsvField(p, bet.birthdate);
    *p++ = ',';
    p = PutUnsigned(p, bet.number);
    *p++ = '\r';
    *p++ = '\n';
    return static_cast<std::size_t>(p - base);
  });
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
    const char* nl = static_cast<const char*>(std::memchr(buffer_.data() + pos_, '\n', end_ - pos_));
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
    const __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, quote)),
                                     _mm_or_si128(_mm_cmpeq_epi8(v, cr), _mm_cmpeq_epi8(v, lf)));
    for (unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(hit)); mask != 0; mask &= mask - 1) {
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
  storage_.clear();
  spans_.clear();
  lines = 0;
  std::size_t i = start;
  const char* b = buffer_.data();
  auto finish_field = [&](std::size_t from) { spans_.emplace_back(from, storage_.size() - from); };
  while (true) {
    std::size_t field_start = storage_.size();
    if (i < end_ && b[i] == '"') {
      ++i;
      while (true) {
        if (i >= end_) {
          if (eof_) {
            error = "unterminated quoted field";
            return Parse::kError;
          }
          return Parse::kNeedMore;
        }
        char c = b[i];
        if (c != '"') {
          if (c == '\n') ++lines;
          storage_.push_back(c);
          ++i;
          continue;
        }
        if (i + 1 >= end_ && !eof_) return Parse::kNeedMore;
        if (i + 1 < end_ && b[i + 1] == '"') {
          storage_.push_back('"');
          i += 2;
          continue;
        }
        ++i;  // the closing quote
        break;
      }
      finish_field(field_start);
      if (i >= end_) {
        if (!eof_) return Parse::kNeedMore;
        end = i;
        record_.terminated = false;
        return Parse::kComplete;
      }
      char c = b[i];
      if (c == ',') {
        ++i;
        continue;
      }
      if (c != '\r' && c != '\n') {
        error = "text after a closing quote";
        return Parse::kError;
      }
    } else {
      while (i < end_ && b[i] != ',' && b[i] != '\r' && b[i] != '\n') {
        if (b[i] == '"') {
          error = "quote inside an unquoted field";
          return Parse::kError;
        }
        storage_.push_back(b[i]);
        ++i;
      }
      if (i >= end_) {
        if (!eof_) return Parse::kNeedMore;
        finish_field(field_start);
        end = i;
        record_.terminated = false;
        return Parse::kComplete;
      }
      finish_field(field_start);
      if (b[i] == ',') {
        ++i;
        continue;
      }
    }
    // At a line end: CRLF, LF, or a lone CR.
    if (b[i] == '\r') {
      if (i + 1 >= end_) {
        if (!eof_) return Parse::kNeedMore;
        // "\r" at the very end: the CRLF was cut, the line is torn.
        end = i + 1;
        record_.terminated = false;
        return Parse::kComplete;
      }
      i += b[i + 1] == '\n' ? 2 : 1;
    } else {
      ++i;
    }
    ++lines;
    end = i;
    record_.terminated = true;
    return Parse::kComplete;
  }
}

Result<std::optional<CsvRecord*>> CsvReader::Next() {
  if (at_start_) {
    while (end_ - pos_ < 3 && !eof_) {
      auto more = ReadMore();
      if (!more) return std::unexpected(more.error());
    }
    if (end_ - pos_ >= 3 && std::memcmp(buffer_.data() + pos_, "\xEF\xBB\xBF", 3) == 0) pos_ += 3;
    at_start_ = false;
  }
  while (true) {
    // Skip blank lines.
    while (true) {
      if (pos_ >= end_) {
        auto more = ReadMore();
        if (!more) return std::unexpected(more.error());
        if (!*more) return std::optional<CsvRecord*>();
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
        break;
      }
    }
    std::size_t end = 0;
    std::uint64_t lines = 0;
    std::string error;
    record_.error.reset();
    record_.terminated = true;
    Parse p = ParseRecord(pos_, end, lines, error);
    if (p == Parse::kNeedMore) {
      if (end_ - pos_ > max_record_bytes_) {
        record_.fields.clear();
        record_.line = line_;
        record_.offset = consumed_ + pos_;
        record_.error = fmt::format("record longer than {} bytes", max_record_bytes_);
        if (auto s = SkipLine(); !s) return std::unexpected(s.error());
        record_.end_offset = consumed_ + pos_;
        return std::optional<CsvRecord*>(&record_);
      }
      auto more = ReadMore();
      if (!more) return std::unexpected(more.error());
      continue;  // parse the same record again with more bytes
    }
    record_.line = line_;
    record_.offset = consumed_ + pos_;
    record_.fields.clear();
    if (p == Parse::kError) {
      record_.error = std::move(error);
      if (auto s = SkipLine(); !s) return std::unexpected(s.error());
      record_.end_offset = consumed_ + pos_;
      return std::optional<CsvRecord*>(&record_);
    }
    if (end - pos_ > max_record_bytes_) {
      record_.error = fmt::format("record longer than {} bytes", max_record_bytes_);
    } else {
      const char* base = spans_in_buffer_ ? buffer_.data() : storage_.data();
      for (auto [from, len] : spans_) record_.fields.emplace_back(base + from, len);
    }
    pos_ = end;
    line_ += lines;
    record_.end_offset = consumed_ + pos_;
    return std::optional<CsvRecord*>(&record_);
  }
}

Result<BetView> DatasetRecordToBet(const CsvRecord& record, std::uint32_t agency) {
  if (record.fields.size() != 5) {
    return Fail(fmt::format("expected 5 columns, got {}", record.fields.size()));
  }
  auto number = ParseBetNumber(record.fields[4]);
  if (!number) return Fail("number: not an integer 0..9999");
  return BetView{agency, record.fields[0], record.fields[1], record.fields[2], record.fields[3],
                 *number};
}

Result<BetView> StoredRecordToBet(const CsvRecord& record) {
  if (record.fields.size() != 6) {
    return Fail(fmt::format("expected 6 columns, got {}", record.fields.size()));
  }
  std::string_view a = record.fields[0];
  std::uint32_t agency = 0;
  auto [end, ec] = std::from_chars(a.data(), a.data() + a.size(), agency);
  if (a.empty() || ec != std::errc() || end != a.data() + a.size() || agency == 0) {
    return Fail("agency: not a positive integer");
  }
  auto number = ParseBetNumber(record.fields[5]);
  if (!number) return Fail("number: not an integer 0..9999");
  return BetView{agency, record.fields[1], record.fields[2], record.fields[3], record.fields[4],
                 *number};
}

}  // namespace lottery
