// Helpers for the libFuzzer targets: the input as a memfd, so readers that
// take a descriptor (CSV, frames, the journal) read exactly the fuzz bytes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/unique_fd.h"

namespace lottery::fuzz {

inline UniqueFd MemFdWith(const std::uint8_t* data, std::size_t size) {
  UniqueFd fd(::memfd_create("fuzz", MFD_CLOEXEC));
  std::size_t done = 0;
  while (fd && done < size) {
    ssize_t n = ::write(fd.get(), data + done, size - done);
    if (n <= 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (fd) ::lseek(fd.get(), 0, SEEK_SET);
  return fd;
}

inline std::string PathOf(const UniqueFd& fd) { return "/proc/self/fd/" + std::to_string(fd.get()); }

}  // namespace lottery::fuzz
