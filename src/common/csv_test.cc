#include "common/csv.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "common/test_util.h"
#include "common/unique_fd.h"
#include "storage/bets_file_row.h"

namespace lottery {
namespace {

struct Parsed {
  std::vector<std::string> fields;
  std::uint64_t line;
  std::uint64_t offset;
  std::uint64_t end_offset;
  bool terminated;
  std::string error;
};

// Reads every record of `text` through a pipe fed by a thread, `chunk` bytes
// per write, so records straddle read() boundaries.
std::vector<Parsed> ReadAll(const std::string& text, std::size_t chunk = 1 << 20,
                            std::size_t max_record = 64 * 1024) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::thread writer([&] {
    for (std::size_t i = 0; i < text.size(); i += chunk) {
      std::size_t n = std::min(chunk, text.size() - i);
      if (::write(write_end.get(), text.data() + i, n) != static_cast<ssize_t>(n)) break;
    }
    write_end.Reset();
  });
  std::vector<Parsed> out;
  CsvReader reader(read_end.get(), max_record);
  while (true) {
    auto next = reader.Next();
    REQUIRE(next);
    if (!next->has_value()) break;
    const CsvRecord& r = ***next;
    Parsed p{{}, r.line, r.offset, r.end_offset, r.terminated, r.error.value_or("")};
    for (auto f : r.fields) p.fields.emplace_back(f);
    out.push_back(std::move(p));
  }
  writer.join();
  return out;
}

using Fields = std::vector<std::string>;

TEST_CASE("fields are quoted only when they must be") {
  std::string out;
  AppendCsvField(out, "plain");
  out += '|';
  AppendCsvField(out, "O'Brien|x");
  out += '|';
  AppendCsvField(out, "a,b");
  out += '|';
  AppendCsvField(out, "say \"hi\"");
  out += '|';
  AppendCsvField(out, "two\nlines");
  out += '|';
  AppendCsvField(out, "cr\r");
  CHECK(out == "plain|O'Brien|x|\"a,b\"|\"say \"\"hi\"\"\"|\"two\nlines\"|\"cr\r\"");
}

TEST_CASE("LF, CRLF, BOM and blank lines") {
  auto r = ReadAll(
      "\xEF\xBB\xBF"
      "a,b\r\n\r\nc,d\n\n\ne,f\r\n");
  REQUIRE(r.size() == 3);
  CHECK(r[0].fields == Fields{"a", "b"});
  CHECK(r[0].line == 1);
  CHECK(r[0].offset == 3);
  CHECK(r[0].end_offset == 8);
  CHECK(r[1].fields == Fields{"c", "d"});
  CHECK(r[1].line == 3);
  CHECK(r[2].fields == Fields{"e", "f"});
  CHECK(r[2].line == 6);
  for (auto& p : r) CHECK(p.terminated);
}

TEST_CASE("quoted fields hold commas, quotes and line breaks") {
  auto r = ReadAll("\"a,b\",\"say \"\"hi\"\"\",\"two\r\nlines\"\r\nnext,row\r\n\"\",x\n");
  REQUIRE(r.size() == 3);
  CHECK(r[0].fields == Fields{"a,b", "say \"hi\"", "two\r\nlines"});
  CHECK(r[0].line == 1);
  CHECK(r[1].fields == Fields{"next", "row"});
  CHECK(r[1].line == 3);  // the quoted line break counted
  CHECK(r[2].fields == Fields{"", "x"});
  CHECK(r[2].line == 4);
}

TEST_CASE("a torn last line comes back unterminated") {
  auto r = ReadAll("a,b\r\nc,d");
  REQUIRE(r.size() == 2);
  CHECK(r[0].terminated);
  CHECK_FALSE(r[1].terminated);
  CHECK(r[1].fields == Fields{"c", "d"});
  auto cr = ReadAll("a,b\r\nc,d\r");
  REQUIRE(cr.size() == 2);
  CHECK_FALSE(cr[1].terminated);
  auto quoted = ReadAll("a,\"b");
  REQUIRE(quoted.size() == 1);
  CHECK(quoted[0].error == "unterminated quoted field");
}

TEST_CASE("records that do not parse are reported and skipped") {
  auto r = ReadAll("ok,1\nbad\"quote,2\n\"closed\"junk,3\nfine,4\n");
  REQUIRE(r.size() == 4);
  CHECK(r[0].error == "");
  CHECK(r[1].error == "quote inside an unquoted field");
  CHECK(r[1].line == 2);
  CHECK(r[2].error == "text after a closing quote");
  CHECK(r[2].line == 3);
  CHECK(r[3].fields == Fields{"fine", "4"});
  CHECK(r[3].line == 4);
}

TEST_CASE("a record longer than the limit is an error, and memory stays bounded") {
  std::string text = "short,1\n" + std::string(5000, 'x') + ",2\nafter,3\n";
  auto r = ReadAll(text, 1 << 20, 1024);
  REQUIRE(r.size() == 3);
  CHECK(r[1].error.find("longer than") != std::string::npos);
  CHECK(r[2].fields == Fields{"after", "3"});
  CHECK(r[2].line == 3);
}

// Reads `text` taking every line PeekLine() offers when `take` accepts it,
// the rest through Next(): "L:" and "R:" say which way each came.
std::vector<std::string> ReadPeeking(const std::string& text, std::size_t chunk,
                                     bool (*take)(std::string_view)) {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  UniqueFd read_end(fds[0]), write_end(fds[1]);
  std::thread writer([&] {
    for (std::size_t i = 0; i < text.size(); i += chunk) {
      std::size_t n = std::min(chunk, text.size() - i);
      if (::write(write_end.get(), text.data() + i, n) != static_cast<ssize_t>(n)) break;
    }
    write_end.Reset();
  });
  std::vector<std::string> out;
  CsvReader reader(read_end.get());
  while (true) {
    if (auto line = reader.PeekLine(); line && take(*line)) {
      out.push_back("L:" + std::string(*line));
      reader.TakePeekedLine();
      continue;
    }
    auto next = reader.Next();
    REQUIRE(next);
    if (!next->has_value()) break;
    std::string joined = "R" + std::to_string((**next)->line) + ":";
    for (auto f : (**next)->fields) joined += std::string(f) + "|";
    if ((**next)->error) joined += "error";
    out.push_back(joined);
  }
  writer.join();
  return out;
}

TEST_CASE("PeekLine offers whole lines; what is not taken Next() reads as a record") {
  const std::string text =
      "\xEF\xBB\xBF"
      "a,b\r\n"
      "c,d\n"
      "\r\n"
      "\"e\nf\",g\n"
      "h,\"i\"\r\n"
      "j,k";
  auto no_quotes = +[](std::string_view line) {
    return !line.empty() && line.find('"') == std::string_view::npos;
  };
  const std::vector<std::string> expected = {"R1:a|b|", "L:c,d", "R4:e\nf|g|", "R6:h|i|",
                                             "R7:j|k|"};
  for (std::size_t chunk : {1, 2, 5, 64, 1 << 20}) {
    CAPTURE(chunk);
    auto got = ReadPeeking(text, chunk, no_quotes);
    if (chunk < 8) {
      // Lines that were not whole in the buffer came through Next(): the
      // same records either way, line numbers kept.
      REQUIRE(got.size() == expected.size());
      CHECK(got[0] == expected[0]);
      CHECK((got[1] == "L:c,d" || got[1] == "R2:c|d|"));
      CHECK(got[2] == expected[2]);
      CHECK(got[3] == expected[3]);
      CHECK(got[4] == expected[4]);
    } else {
      CHECK(got == expected);
    }
  }
  // Taking nothing reads exactly what Next() alone reads.
  auto none = ReadPeeking(
      text, 1 << 20, +[](std::string_view) { return false; });
  CHECK(none == std::vector<std::string>{"R1:a|b|", "R2:c|d|", "R4:e\nf|g|", "R6:h|i|", "R7:j|k|"});
}

TEST_CASE("streaming: the same records whatever the read boundaries") {
  std::string text;
  for (int i = 0; i < 300; ++i) {
    const std::string document = std::to_string(i);
    BetView b{static_cast<std::uint32_t>(i % 7 + 1),
              "Ana \"la\", María",
              "Núñez\nDíaz",
              document,
              "1990-01-01",
              static_cast<std::uint32_t>(i)};
    AppendBetRow(text, b);
  }
  auto whole = ReadAll(text);
  for (std::size_t chunk : {1, 2, 3, 7, 64, 4095}) {
    auto pieces = ReadAll(text, chunk);
    REQUIRE(pieces.size() == whole.size());
    for (std::size_t i = 0; i < whole.size(); ++i) {
      CHECK(pieces[i].fields == whole[i].fields);
      CHECK(pieces[i].line == whole[i].line);
      CHECK(pieces[i].offset == whole[i].offset);
    }
  }
  REQUIRE(whole.size() == 300);
  CHECK(whole[299].line == 599);  // each row spans two lines
}

// The dialect of csv.h, written the plain way, as the reference the reader's
// fast path (unquoted records, 16 bytes at a time) must agree with: records
// end at LF, CRLF or a lone CR outside quotes; blank lines are skipped; a
// quote inside an unquoted field or text after a closing quote makes the
// record an error, and reading resumes after the first LF at or after the
// record's start.
std::vector<std::vector<std::string>> ReferenceParse(const std::string& t) {
  std::vector<std::vector<std::string>> out;
  std::size_t i = 0;
  while (i < t.size()) {
    if (t[i] == '\n') {
      ++i;
      continue;
    }
    if (t[i] == '\r') {
      i += (i + 1 < t.size() && t[i + 1] == '\n') ? 2 : 1;
      continue;
    }
    const std::size_t start = i;
    std::vector<std::string> rec;
    bool error = false;
    while (true) {
      std::string f;
      if (i < t.size() && t[i] == '"') {
        ++i;
        bool closed = false;
        while (i < t.size()) {
          if (t[i] == '"') {
            if (i + 1 < t.size() && t[i + 1] == '"') {
              f += '"';
              i += 2;
              continue;
            }
            ++i;
            closed = true;
            break;
          }
          f += t[i++];
        }
        if (!closed) {
          error = true;
          break;
        }
        if (i < t.size() && t[i] != ',' && t[i] != '\r' && t[i] != '\n') {
          error = true;
          break;
        }
      } else {
        while (i < t.size() && t[i] != ',' && t[i] != '\r' && t[i] != '\n') {
          if (t[i] == '"') {
            error = true;
            break;
          }
          f += t[i++];
        }
        if (error) break;
      }
      rec.push_back(f);
      if (i < t.size() && t[i] == ',') {
        ++i;
        continue;
      }
      if (i < t.size()) i += (t[i] == '\r' && i + 1 < t.size() && t[i + 1] == '\n') ? 2 : 1;
      break;
    }
    if (error) {
      auto nl = t.find('\n', start);
      i = nl == std::string::npos ? t.size() : nl + 1;
      rec = {"<error>"};
    }
    out.push_back(rec);
  }
  return out;
}

TEST_CASE("random records: the reader agrees with the reference at every read boundary") {
  std::mt19937 rng(20261123);
  const std::string alphabet = "ab,,\"\r\n\nxyz0123456789 \xc3\xb1";
  for (int round = 0; round < 200; ++round) {
    std::string text;
    const int records = static_cast<int>(rng() % 40);
    for (int r = 0; r < records; ++r) {
      // Mostly well-formed rows, long and short, some quoted; some noise.
      const int fields = static_cast<int>(rng() % 7) + 1;
      for (int f = 0; f < fields; ++f) {
        if (f > 0) text += ',';
        std::string v(rng() % 40, 'a');
        for (char& c : v) c = static_cast<char>('a' + rng() % 26);
        if (rng() % 6 == 0) {
          AppendCsvField(text, v + (rng() % 2 ? "," : "\"q\""));
        } else {
          text += v;
        }
      }
      if (rng() % 9 == 0) text += alphabet[rng() % alphabet.size()];
      const int end = static_cast<int>(rng() % 4);
      text += end == 0 ? "\n" : end == 1 ? "\r\n" : end == 2 ? "\r" : "\r\n\r\n";
    }
    if (rng() % 3 == 0) text.resize(text.size() - std::min<std::size_t>(text.size(), rng() % 5));
    const auto expected = ReferenceParse(text);
    for (std::size_t chunk :
         {std::size_t{1}, std::size_t{5}, std::size_t{17}, std::size_t{1} << 20}) {
      auto got = ReadAll(text, chunk);
      REQUIRE_MESSAGE(got.size() == expected.size(), "chunk: ", chunk);
      for (std::size_t k = 0; k < got.size(); ++k) {
        if (!got[k].error.empty()) {
          CHECK_MESSAGE(expected[k] == std::vector<std::string>{"<error>"}, "record ", k);
        } else {
          CHECK_MESSAGE(got[k].fields == expected[k], "record ", k, " chunk ", chunk);
        }
      }
    }
  }
}

}  // namespace
}  // namespace lottery
