#include "storage/rounds.h"

#include <openssl/evp.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include <fmt/format.h>

#include "common/coding.h"
#include "common/crc32.h"
#include "common/file_io.h"
#include "storage/batch_journal.h"
#include "storage/bet_store.h"
#include "wire/bet.h"

namespace lottery {
namespace {

// The round result's layout (docs/STORAGE.md, "The round result").
constexpr char kResultMagic[4] = {'L', 'R', 'R', '1'};
constexpr std::size_t kResultHeaderSize = 80;   // up to the first agency's entry
constexpr std::size_t kResultTrailerSize = 4;   // CRC-32
constexpr std::size_t kMaxResultDocument = 10;  // kMaxDocumentDigits

}  // namespace

std::string_view RoundStateName(RoundState state) {
  switch (state) {
    case RoundState::kOpen: return "open";
    case RoundState::kClosed: return "closed";
    case RoundState::kDrawn: return "drawn";
    case RoundState::kArchived: return "archived";
  }
  return "unknown";
}

RoundFiles CurrentRoundFiles(const std::string& storage_path) {
  return RoundFiles{storage_path, storage_path + ".journal", storage_path + ".result"};
}

std::string ArchiveRoot(const std::string& storage_path) {
  const std::string dir = DirectoryOf(storage_path);
  return dir == "/" ? "/rounds" : dir + "/rounds";
}

RoundFiles ArchivedRoundFiles(const std::string& storage_path, std::uint64_t number) {
  return CurrentRoundFiles(
      fmt::format("{}/{}/{}", ArchiveRoot(storage_path), number, BaseNameOf(storage_path)));
}

std::uint64_t RoundResult::winner_count() const {
  std::uint64_t n = 0;
  for (const auto& w : winners) n += w.size();
  return n;
}

// --- The result file ---------------------------------------------------------

void EncodeRoundResult(std::string& out, const RoundResult& r) {
  const std::size_t at = out.size();
  out.append(kResultMagic, sizeof kResultMagic);
  PutFixedLe(out, r.agencies(), 4);
  PutFixedLe(out, r.round, 8);
  PutFixedLe(out, r.winning_number, 4);
  PutFixedLe(out, 0, 4);
  PutFixedLe(out, r.bets, 8);
  PutFixedLe(out, static_cast<std::uint64_t>(r.drawn_at), 8);
  PutFixedLe(out, r.bets_file_size, 8);
  out.append(reinterpret_cast<const char*>(r.bets_sha256.data()), r.bets_sha256.size());
  for (std::uint32_t a = 1; a <= r.agencies(); ++a) {
    const bool took_part = a < r.took_part.size() && r.took_part[a];
    out.push_back(took_part ? 1 : 0);
    PutFixedLe(out, r.winners[a].size(), 4);
    for (const std::string& doc : r.winners[a]) {
      out.push_back(static_cast<char>(doc.size()));
      out += doc;
    }
  }
  PutFixedLe(out, Crc32(out.data() + at, out.size() - at), 4);
}

Result<RoundResult> DecodeRoundResult(std::string_view b) {
  auto corrupt = [](std::string what) {
    return Fail(ErrorKind::kCorruptData, "round result: " + std::move(what));
  };
  if (b.size() < kResultHeaderSize + kResultTrailerSize) return corrupt("too short");
  if (std::memcmp(b.data(), kResultMagic, sizeof kResultMagic) != 0) return corrupt("bad magic");
  const std::size_t body = b.size() - kResultTrailerSize;
  if (GetFixedLe(b.data() + body, 4) != Crc32(b.data(), body)) return corrupt("bad checksum");
  RoundResult r;
  const std::uint64_t agencies = GetFixedLe(b.data() + 4, 4);
  if (agencies == 0 || agencies > kMaxAgencies) return corrupt("agency count out of range");
  r.round = GetFixedLe(b.data() + 8, 8);
  r.winning_number = static_cast<std::uint32_t>(GetFixedLe(b.data() + 16, 4));
  if (GetFixedLe(b.data() + 20, 4) != 0) return corrupt("reserved bytes are not zero");
  r.bets = GetFixedLe(b.data() + 24, 8);
  r.drawn_at = static_cast<std::int64_t>(GetFixedLe(b.data() + 32, 8));
  r.bets_file_size = GetFixedLe(b.data() + 40, 8);
  std::memcpy(r.bets_sha256.data(), b.data() + 48, r.bets_sha256.size());
  r.took_part.assign(agencies + 1, false);
  r.winners.assign(agencies + 1, {});
  std::size_t at = kResultHeaderSize;
  for (std::uint32_t a = 1; a <= agencies; ++a) {
    if (at + 5 > body) return corrupt(fmt::format("agency {} runs past the end", a));
    const auto took_part = static_cast<unsigned char>(b[at]);
    const std::uint64_t count = GetFixedLe(b.data() + at + 1, 4);
    at += 5;
    if (took_part > 1) return corrupt(fmt::format("agency {}: took_part is {}", a, took_part));
    if (!took_part && count > 0)
      return corrupt(fmt::format("agency {} won without taking part", a));
    if (count > (body - at) / 2) return corrupt(fmt::format("agency {}: {} winners", a, count));
    r.took_part[a] = took_part == 1;
    for (std::uint64_t i = 0; i < count; ++i) {
      if (at >= body) return corrupt(fmt::format("agency {} runs past the end", a));
      const std::size_t length = static_cast<unsigned char>(b[at++]);
      if (length == 0 || length > kMaxResultDocument || at + length > body) {
        return corrupt(fmt::format("agency {}: a document of {} bytes", a, length));
      }
      std::string_view doc = b.substr(at, length);
      if (!IsDocument(doc))
        return corrupt(fmt::format("agency {}: a document that is not digits", a));
      r.winners[a].emplace_back(doc);
      at += length;
    }
  }
  if (at != body) return corrupt("bytes after the last agency");
  return r;
}

Result<RoundResult> ReadRoundResult(const std::string& path) {
  auto bytes = ReadFileBytes(path);
  if (!bytes) return std::unexpected(bytes.error());
  auto result = DecodeRoundResult(*bytes);
  if (!result) {
    Error e = result.error();
    e.message = path + ": " + e.message;
    return std::unexpected(e);
  }
  return result;
}

Status WriteRoundResult(const std::string& path, const RoundResult& result) {
  std::string bytes;
  EncodeRoundResult(bytes, result);
  return ReplaceFileDurably(path, bytes, kBetsFileMode);
}

Result<std::array<std::uint8_t, 32>> Sha256OfFile(int fd, std::uint64_t size) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1) {
    return Fail(ErrorKind::kInternal, "SHA-256 is not available");
  }
  std::string chunk(1 << 20, '\0');
  for (std::uint64_t at = 0; at < size;) {
    const std::size_t n =
        static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - at));
    if (Status r = PreadAll(fd, chunk.data(), n, at, "read bets file"); !r) {
      return std::unexpected(r.error());
    }
    EVP_DigestUpdate(ctx.get(), chunk.data(), n);
    at += n;
  }
  std::array<std::uint8_t, 32> digest{};
  unsigned int length = 0;
  EVP_DigestFinal_ex(ctx.get(), digest.data(), &length);
  return digest;
}

std::string Sha256Hex(std::span<const std::uint8_t> digest) {
  std::string out;
  for (std::uint8_t b : digest) out += fmt::format("{:02x}", b);
  return out;
}

}  // namespace lottery
