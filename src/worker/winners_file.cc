#include "worker/winners_file.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "common/coding.h"
#include "common/file_io.h"

namespace lottery {

Result<UniqueFd> CreateWinnersFile() {
  int fd = ::memfd_create("lottery-winners", MFD_CLOEXEC);
  if (fd < 0) return FailErrno("memfd_create");
  return UniqueFd(fd);
}

std::vector<WinnersExtent> EncodeWinners(const std::vector<std::vector<std::string>>& winners,
                                         std::string& out) {
  std::vector<WinnersExtent> extents(winners.size());
  for (std::size_t a = 1; a < winners.size(); ++a) {
    extents[a].offset = out.size();
    for (const std::string& doc : winners[a]) {
      PutFixedBe(out, doc.size(), 2);
      out += doc;
    }
    extents[a].bytes = out.size() - extents[a].offset;
    extents[a].count = static_cast<std::uint32_t>(winners[a].size());
  }
  return extents;
}

Result<std::vector<std::string>> DecodeWinnerList(std::string_view bytes) {
  std::vector<std::string> documents;
  std::size_t pos = 0;
  while (pos < bytes.size()) {
    if (pos + 2 > bytes.size()) return Fail(ErrorKind::kCorruptData, "winners file is corrupt");
    const std::size_t len = GetFixedBe(bytes.data() + pos, 2);
    if (pos + 2 + len > bytes.size())
      return Fail(ErrorKind::kCorruptData, "winners file is corrupt");
    documents.emplace_back(bytes.substr(pos + 2, len));
    pos += 2 + len;
  }
  return documents;
}

Status WriteWinnersFile(int fd, std::string_view bytes) {
  if (::ftruncate(fd, static_cast<off_t>(bytes.size())) != 0) return FailErrno("ftruncate winners");
  return PwriteAll(fd, bytes, 0, "write winners");
}

Result<std::vector<std::string>> ReadWinnerList(int fd, const WinnersExtent& extent) {
  std::string blob(extent.bytes, '\0');
  if (Status read = PreadAll(fd, blob.data(), blob.size(), extent.offset, "read winners"); !read) {
    return std::unexpected(read.error());
  }
  auto documents = DecodeWinnerList(blob);
  if (documents && documents->size() != extent.count) {
    return Fail(ErrorKind::kCorruptData, "winners file is corrupt");
  }
  return documents;
}

}  // namespace lottery
