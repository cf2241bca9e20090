// The winners file: where the draw's results go, one memfd that the parent
// creates before the first fork so that every worker shares it. The worker
// that runs the draw writes every agency's list; each worker then reads its
// own agency's list at the extent the draw published in the shared segment.
// Format (docs/STORAGE.md, "The winners file"): per agency in id order, each
// winning document as a 2-byte big-endian length and its bytes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/unique_fd.h"

namespace lottery {

// Where one agency's list is in the file.
struct WinnersExtent {
  std::uint64_t offset = 0;
  std::uint64_t bytes = 0;
  std::uint32_t count = 0;
};

// The anonymous shared file (memfd) the results go to.
Result<UniqueFd> CreateWinnersFile();

// Encodes winners[1..] (winners[0] is unused) into `out`, and returns the
// extent of each agency's list (index 0 unused). A document is at most
// 65535 bytes (the protocol's limit is far lower).
std::vector<WinnersExtent> EncodeWinners(const std::vector<std::vector<std::string>>& winners,
                                         std::string& out);

// Decodes one agency's list (the bytes of its extent). Fails with
// kCorruptData when a length runs past the end.
Result<std::vector<std::string>> DecodeWinnerList(std::string_view bytes);

// Replaces the file's contents with `bytes`.
Status WriteWinnersFile(int fd, std::string_view bytes);

// Reads and decodes the list at `extent`.
Result<std::vector<std::string>> ReadWinnerList(int fd, const WinnersExtent& extent);

}  // namespace lottery
