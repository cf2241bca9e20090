// Moving whole frames over a byte stream (the socket, or TLS over it). Reads and writes loop until
// a frame is complete, so neither a peer that dribbles one byte at a time nor many frames in one
// segment can split or merge messages.
//
// Neither owns the stream, which must outlive them. Both can be interrupted by a "cancel"
// descriptor (a SignalFd): when it becomes readable the call returns
// kCancelled without consuming it, so the caller decides what the signal means.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/byte_stream.h"
#include "common/status.h"
#include "wire/protocol.h"

namespace lottery {

using Millis = std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

enum class IoStatus {
  kOk,
  kClosed,     // the peer closed cleanly between frames
  kTruncated,  // the peer closed in the middle of a frame
  kTooLarge,   // the header announced more than the limit; payload not read
  kTimeout,    // no frame started in time, or a frame stalled
  kCancelled,  // the cancel descriptor became readable
  kError,      // a socket error; see FrameReader::error()
};

const char* IoStatusName(IoStatus status);

struct Frame {
  std::uint8_t type = 0;
  std::string_view payload;  // valid until the next Read()
};

// Reads frames from a stream it does not own (which must outlive it) into
// a buffer of its own: 64 KiB, or two frames when they are larger, that
// grows up to 256 KiB while the peer keeps filling it. A busy pipelining
// peer's frames then come in with few reads, and the worker stores and acks
// the many frames of one read together (docs/PERFORMANCE.md: 64 KiB reads
// cost a round about 10% more CPU); a peer that sends little keeps the
// small buffer.
class FrameReader {
 public:
  static constexpr std::size_t kStartBuffer = 64 * 1024;
  static constexpr std::size_t kMaxBuffer = 256 * 1024;

  // `max_frame` is the largest whole frame accepted (header included).
  FrameReader(ByteStream& stream, int cancel_fd, std::size_t max_frame = kMaxFrameSize);

  // Reads the next whole frame. `idle` bounds the wait for its first byte
  // (std::nullopt waits forever); once the frame has started, all of it must
  // arrive within `stall` (a deadline for the whole frame, however the bytes
  // are spread). On kTooLarge, `frame.type` and header() tell what
  // was announced.
  IoStatus Read(Frame& frame, std::optional<Millis> idle, Millis stall);

  const FrameHeader& header() const { return header_; }
  const std::string& error() const { return error_; }
  // Bytes received but not yet returned in a frame (a frame in progress).
  std::size_t buffered() const { return end_ - begin_; }
  // The buffer's size now.
  std::size_t capacity() const { return buffer_.size(); }
  // Whether a whole frame is already buffered, so that Read() returns
  // without waiting (a pipelining peer sent several at once).
  bool HasWholeFrame() const;

 private:
  // Makes at least `want` unconsumed bytes available, waiting until
  // `deadline` at most (std::nullopt: no bound). Returns kOk or why not.
  IoStatus Fill(std::size_t want, std::optional<Clock::time_point> deadline);

  ByteStream& stream_;
  int cancel_fd_;
  std::size_t max_frame_;
  std::string buffer_;
  std::size_t begin_ = 0;  // start of unconsumed bytes
  std::size_t end_ = 0;    // end of valid bytes
  FrameHeader header_;
  std::string error_;
};

// Writes all of `bytes`, waiting at most `stall` for the stream to accept
// more each time it is full. Never raises SIGPIPE.
IoStatus WriteAll(ByteStream& stream, std::string_view bytes, int cancel_fd, Millis stall);

// Writes all of `pieces`, in order, as WriteAll does one buffer: gathered
// into as few writes as the stream allows (ByteStream::WriteSomeOf). The
// views are advanced as bytes go out; on return they are all empty unless
// the status is not kOk.
IoStatus WriteAll(ByteStream& stream, std::span<std::string_view> pieces, int cancel_fd,
                  Millis stall);

}  // namespace lottery
