#include "agency/dataset_reader.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

namespace lottery {
namespace {

TEST_CASE("dataset records become bets or say why not") {
  CsvRecord r;
  std::vector<std::string> fields = {"Ana", "Paz", "123", "1990-01-01", "42"};
  for (auto& f : fields) r.fields.push_back(f);
  auto bet = DatasetRecordToBet(r, 9);
  REQUIRE(bet);
  CHECK(bet->agency == 9);
  CHECK(bet->number == 42);
  r.fields[4] = "10000";
  CHECK(DatasetRecordToBet(r, 9).error().message == "number: not an integer 0..9999");
  r.fields[4] = "4x";
  CHECK_FALSE(DatasetRecordToBet(r, 9));
  r.fields[4] = "";
  CHECK_FALSE(DatasetRecordToBet(r, 9));
  r.fields.pop_back();
  CHECK(DatasetRecordToBet(r, 9).error().message == "expected 5 columns, got 4");
}

// A regular file is read at the disk's pace; a pipe or a device may wait
// for its writer (the agency sends what it has built before such a read).
TEST_CASE("a dataset says its size and whether a read may wait for a writer") {
  char dir[] = "/tmp/lottery-dataset-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string file = std::string(dir) + "/agency-1.csv";
  const std::string fifo = std::string(dir) + "/agency-1.fifo";
  std::FILE* f = std::fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fputs("Ana,Paz,1,1990-01-01,7\r\n", f);
  std::fclose(f);
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  auto regular = OpenDataset(file);
  REQUIRE(regular);
  CHECK(regular->size == 24);
  CHECK_FALSE(regular->streamed);
  // O_RDONLY on a FIFO waits for a writer: open one first, non-blocking.
  const int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
  const int writer = ::open(fifo.c_str(), O_WRONLY | O_NONBLOCK);
  REQUIRE(writer >= 0);
  auto pipe = OpenDataset(fifo);
  REQUIRE(pipe);
  CHECK(pipe->size == 0);
  CHECK(pipe->streamed);
  auto device = OpenDataset("/dev/null");
  REQUIRE(device);
  CHECK(device->streamed);
  CHECK_FALSE(OpenDataset(dir));
  ::close(writer);
  ::close(reader);
  ::unlink(file.c_str());
  ::unlink(fifo.c_str());
  ::rmdir(dir);
}

// Every kind of line, in the order of the file: the rows the agency sends,
// whichever way each line was read (the one pass for common rows, the CSV
// reader for the rest), and the lines it skips.
TEST_CASE("a dataset's rows come out in file order, each line read the way it needs") {
  char dir[] = "/tmp/lottery-dataset-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  const std::string file = std::string(dir) + "/agency-3.csv";
  const std::string long_name(70, 'a');
  const std::string text =
      "\xEF\xBB\xBF"                                               // a byte order mark
      "Ana,Paz,12345678,1990-01-01,7\r\n"                          // CRLF, the first line
      "Luis,Núñez,1,1999-12-31,9999\n"                             // LF, accents
      "\n"                                                         // blank: skipped silently
      "\"Ana \"\"la\"\" María, hija\",Núñez,12,1980-05-17,7574\n"  // quoted: as it is
      "Ana,Paz,0123,1990-01-01,0007\n"                             // valid, re-spelled
      "  Eva  ,Sol,5,2000-02-29,1\n"                               // valid as it is (spaces kept)
      "Ana,Paz,1,2001-02-29,1\n"                                   // no such day: skipped
      "=cmd,Paz,1,1990-01-01,1\n"                                  // formula: skipped
      "Ana,Paz,1,1990-01-01\n" +                                   // four columns: skipped
      long_name +
      ",Paz,1234567890,1990-01-01,1\n"  // longer than one pass takes
      "Ana,Paz,1,1990-01-01,42";        // no line end at the end
  std::FILE* f = std::fopen(file.c_str(), "w");
  REQUIRE(f != nullptr);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
  auto dataset = OpenDataset(file);
  REQUIRE(dataset);
  DatasetRows rows(dataset->fd.get(), 3, Date{2026, 11, 22});
  std::vector<std::string> got;
  int skipped = 0;
  while (true) {
    std::string_view row;
    const RowRead r = rows.Next(row);
    REQUIRE(r != RowRead::kError);
    if (r == RowRead::kEnd) break;
    if (r == RowRead::kSkipped) {
      ++skipped;
      continue;
    }
    got.emplace_back(row);
  }
  const std::vector<std::string> want = {"Ana,Paz,12345678,1990-01-01,7",
                                         "Luis,Núñez,1,1999-12-31,9999",
                                         "\"Ana \"\"la\"\" María, hija\",Núñez,12,1980-05-17,7574",
                                         "Ana,Paz,0123,1990-01-01,7",
                                         "  Eva  ,Sol,5,2000-02-29,1",
                                         long_name + ",Paz,1234567890,1990-01-01,1",
                                         "Ana,Paz,1,1990-01-01,42"};
  CHECK(got == want);
  CHECK(skipped == 3);
  CHECK(rows.lines_skipped() == 3);
  std::remove(file.c_str());
  ::rmdir(dir);
}

}  // namespace
}  // namespace lottery
