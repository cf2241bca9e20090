// Helpers for the libFuzzer targets: the input as a memfd, so readers that
// take a descriptor (CSV, frames, the journal) read exactly the fuzz bytes.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/byte_stream.h"
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

// The fuzzer's bytes as a stream that hands them out in pieces of varying
// size (the first byte picks the rhythm), then ends: the frame reader meets
// frames split anywhere, as from a real socket.
class BufferStream final : public ByteStream {
 public:
  BufferStream(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}
  int fd() const override { return -1; }
  StreamStep ReadSome(char* buffer, std::size_t length) override {
    if (at_ == size_) return {StreamStep::kClosed, 0, 0};
    std::size_t piece = 1 + (size_ > 0 ? data_[0] : 0) % 61 + (at_ % 7);
    piece = std::min({piece, length, size_ - at_});
    std::memcpy(buffer, data_ + at_, piece);
    at_ += piece;
    return {StreamStep::kData, piece, 0};
  }
  StreamStep WriteSome(const char*, std::size_t length) override {
    return {StreamStep::kData, length, 0};
  }
  const std::string& error() const override { return error_; }

 private:
  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t at_ = 0;
  std::string error_;
};

inline std::string PathOf(const UniqueFd& fd) {
  return "/proc/self/fd/" + std::to_string(fd.get());
}

}  // namespace lottery::fuzz
