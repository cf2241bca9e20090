#include "common/peak_rss.h"

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <string_view>

#include "common/unique_fd.h"

namespace lottery {

std::optional<long> PeakRssKib() {
  UniqueFd fd(::open("/proc/self/status", O_RDONLY | O_CLOEXEC));
  if (!fd) return std::nullopt;
  char buffer[4096];
  ssize_t n = ::read(fd.get(), buffer, sizeof buffer - 1);
  if (n <= 0) return std::nullopt;
  std::string_view text(buffer, static_cast<std::size_t>(n));
  constexpr std::string_view kKey = "VmHWM:";
  auto at = text.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  at = text.find_first_not_of(" \t", at + kKey.size());
  if (at == std::string_view::npos) return std::nullopt;
  long kib = 0;
  auto [end, ec] = std::from_chars(text.data() + at, text.data() + text.size(), kib);
  if (ec != std::errc()) return std::nullopt;
  return kib;
}

}  // namespace lottery
