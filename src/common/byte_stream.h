// A connected byte stream that never blocks: the socket itself, or a TLS
// session over it (tls/tls_stream.h). Frame I/O (wire/frame_io.h) reads and
// writes through it and does the waiting itself, so one deadline logic
// serves both.
//
// A stream does not own its socket unless it says so; the socket must
// outlive it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace lottery {

struct StreamStep {
  enum Kind {
    kData,        // `bytes` were moved (> 0)
    kClosed,      // the peer ended the stream cleanly
    kWouldBlock,  // wait for `events` (POLLIN or POLLOUT) on fd() and retry
    kError,       // the stream is broken; error() says why
  };
  Kind kind = kError;
  std::size_t bytes = 0;
  short events = 0;
};

class ByteStream {
 public:
  virtual ~ByteStream() = default;
  // The socket to poll when a call says kWouldBlock.
  virtual int fd() const = 0;
  virtual StreamStep ReadSome(char* buffer, std::size_t length) = 0;
  virtual StreamStep WriteSome(const char* buffer, std::size_t length) = 0;
  // Writes from `pieces` in order, as if they were one buffer: kData says
  // how many bytes in all. This one writes from the first non-empty piece
  // only; a stream that can gather (the socket) writes several at once.
  virtual StreamStep WriteSomeOf(std::span<const std::string_view> pieces);
  // Why the last kError happened.
  virtual const std::string& error() const = 0;
};

// The socket itself, read and written with MSG_DONTWAIT (never SIGPIPE).
class PlainStream final : public ByteStream {
 public:
  explicit PlainStream(int fd) : fd_(fd) {}
  int fd() const override { return fd_; }
  StreamStep ReadSome(char* buffer, std::size_t length) override;
  StreamStep WriteSome(const char* buffer, std::size_t length) override;
  // One sendmsg() of up to 64 pieces: one TCP segment train, not one each.
  StreamStep WriteSomeOf(std::span<const std::string_view> pieces) override;
  const std::string& error() const override { return error_; }

 private:
  int fd_;
  std::string error_;
};

enum class WaitResult { kReady, kTimeout, kCancelled, kError };

// Waits until `fd` is ready for `events` (ready, hung up or failed: the next
// call tells), until `deadline` (std::nullopt: no bound), or until
// `cancel_fd` (-1: none) becomes readable, which it does not consume.
WaitResult WaitForEvents(int fd, short events, int cancel_fd,
                         std::optional<std::chrono::steady_clock::time_point> deadline);

}  // namespace lottery
