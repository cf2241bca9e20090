// The wire protocol, as documented in docs/PROTOCOL.md: frame header, message
// types, error codes and the payload codecs. Pure functions over byte
// buffers; no I/O here (see frame_io.h).
//
// Encoders append a whole frame (header included) to a std::string so one
// write() sends it. Decoders take a payload and return views into it: the
// payload buffer must outlive what they return.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/coding.h"
#include "common/status.h"
#include "wire/bet.h"
#include "wire/bet_row.h"

namespace lottery {

inline constexpr std::size_t kFrameHeaderSize = 5;
inline constexpr std::size_t kMaxFrameSize = 8192;  // header + payload
// BETS frames an agency sends ahead of their ACKs unless told otherwise
// (batch.window); a PostgreSQL store takes that many at most.
inline constexpr int kDefaultBatchWindow = 256;
inline constexpr std::size_t kMaxPayloadSize = kMaxFrameSize - kFrameHeaderSize;
inline constexpr std::uint32_t kNoBetIndex = 0xffffffffu;

// Where the fields filled in after a frame was begun lie (docs/PROTOCOL.md):
// the payload length (u32) after the type byte, and a BETS frame's bet
// count (u16) after its header and seq (u64). Every integer on the wire is
// big-endian (common/coding.h).
inline constexpr std::size_t kFrameLengthOffset = 1;
inline constexpr std::size_t kBetsSeqOffset = kFrameHeaderSize;
inline constexpr std::size_t kBetsCountOffset = kBetsSeqOffset + 8;

enum class MessageType : std::uint8_t {
  kHello = 0x01,
  kBets = 0x02,
  kFinished = 0x03,
  kWinnersQuery = 0x04,
  kEcho = 0x05,
  kWelcome = 0x81,
  kAck = 0x82,
  kFinishedAck = 0x83,
  kWinners = 0x84,
  kEchoReply = 0x85,
  kError = 0x7f,
};

enum class ErrorCode : std::uint16_t {
  kMalformed = 1,
  kFrameTooLarge = 2,
  kUnknownType = 3,
  kOutOfOrder = 4,
  kBadAgency = 5,
  kAgencyBusy = 6,
  kInvalidBet = 7,
  kSequenceGap = 8,
  kDrawCancelled = 9,
  kStorageFailed = 10,
  kTimeout = 11,
  kShuttingDown = 12,
  kTooManyConnections = 13,
  kTlsRequired = 14,     // sent in plaintext to a plaintext peer of a TLS server
  kNotAuthorized = 15,   // the peer's certificate does not speak for that agency
  kReplaced = 16,        // a newer connection authenticated as the same agency took over
  kReplayMismatch = 17,  // a re-sent batch differs from the one stored under its seq
  kBettingClosed = 18,   // betting closed (draw.deadline, the operator) before FINISHED
};

const char* MessageTypeName(std::uint8_t type);
const char* ErrorCodeName(ErrorCode code);
bool IsKnownMessageType(std::uint8_t type);

struct FrameHeader {
  std::uint8_t type = 0;
  std::uint32_t length = 0;  // payload bytes
};

// Decodes the 5-byte header at the start of `bytes`, which must hold at
// least kFrameHeaderSize bytes (asserted).
FrameHeader DecodeFrameHeader(std::string_view bytes);

// --- Payloads -----------------------------------------------------------

// WELCOME's round_state.
inline constexpr std::uint8_t kRoundOpen = 1;
inline constexpr std::uint8_t kRoundClosed = 2;  // betting closed, the draw not run yet
inline constexpr std::uint8_t kRoundDrawn = 3;

// What the server holds of an agency (docs/PROTOCOL.md, WELCOME). An agency
// resumes by bets_stored and stored_digest (wire/row_digest.h), not by
// last_seq: a new process may cut its dataset into other batches.
struct Welcome {
  std::uint64_t last_seq = 0;             // the last stored batch's seq (0: none)
  bool finished = false;                  // the agency said FINISHED this round
  std::uint64_t bets_stored = 0;          // this agency's bets the round holds
  std::uint64_t stored_digest = 0;        // StoredRows::digest of those bets' rows
  std::uint64_t round = 0;                // the round's number
  std::uint8_t round_state = kRoundOpen;  // kRoundOpen, kRoundClosed or kRoundDrawn
};
inline constexpr std::size_t kWelcomeSize = 34;  // payload bytes

struct Ack {
  std::uint64_t seq = 0;
  std::uint16_t count = 0;
};

struct ErrorReply {
  ErrorCode code = ErrorCode::kMalformed;
  std::uint32_t bet_index = kNoBetIndex;
  std::string message;
};

// Whether the server closes the connection after sending this error.
bool ErrorClosesConnection(ErrorCode code);

// --- Encoders (append one whole frame) -----------------------------------

void EncodeHello(std::string& out, std::uint32_t agency_id);
void EncodeWelcome(std::string& out, const Welcome& welcome);
void EncodeAck(std::string& out, const Ack& ack);
void EncodeFinished(std::string& out);
void EncodeFinishedAck(std::string& out, std::uint64_t bets_stored);
void EncodeWinnersQuery(std::string& out);
// One WINNERS frame with the given documents (caller keeps it <= 8 KiB; see
// EncodeWinnersFrames).
void EncodeWinners(std::string& out, bool last, std::span<const std::string_view> documents);
// Splits a winners list into as many WINNERS frames as needed to keep each
// one within kMaxFrameSize; always at least one frame (the last one).
void EncodeWinnersFrames(std::string& out, std::span<const std::string_view> documents);
void EncodeEcho(std::string& out, std::string_view payload);
void EncodeEchoReply(std::string& out, std::string_view payload);
void EncodeError(std::string& out, const ErrorReply& error);

// Builds one BETS frame in place, bet by bet, never exceeding kMaxFrameSize.
// The frame lives in the caller's string; Add() and AddRow() write straight
// into it. Each bet travels as its bet row (wire/bet_row.h).
class BetBatchEncoder {
 public:
  // Starts a frame at the end of `out`; `out` must outlive the encoder.
  BetBatchEncoder(std::string& out, std::uint64_t seq);

  // Bytes a bet takes inside a BETS payload: its row and the row's length.
  static std::size_t EncodedSize(const BetView& bet);
  // Whether `bet` still fits in this frame.
  bool Fits(const BetView& bet) const;
  // Whether a row of `row_size` bytes still fits in this frame.
  bool FitsRow(std::size_t row_size) const {
    return count_ < 0xffff && (out_.size() - start_) + 2 + row_size <= kMaxFrameSize;
  }
  // Appends the bet's row; returns false (and changes nothing) when it does
  // not fit.
  bool Add(const BetView& bet);
  // Appends a row as it is: the caller checked it with ParseBetRow (an
  // agency that read it so in its dataset). False when it does not fit.
  // Inline: an agency calls it for every bet.
  bool AddRow(std::string_view row) {
    if (!FitsRow(row.size())) return false;
    const std::size_t at = out_.size();
    const std::size_t size = at + 2 + row.size();
    out_.resize_and_overwrite(size, [&](char* base, std::size_t) {
      base[at] = static_cast<char>(row.size() >> 8);
      base[at + 1] = static_cast<char>(row.size() & 0xff);
      std::memcpy(base + at + 2, row.data(), row.size());
      return size;
    });
    Added();
    return true;
  }
  std::uint16_t count() const { return count_; }
  std::uint64_t seq() const { return seq_; }

 private:
  // Counts the bet just written and updates the frame's header: its
  // payload length (big-endian u32 after the type byte) and the bet count
  // (big-endian u16 after the seq), as FinishFrame() and the constructor
  // write them.
  void Added() {
    ++count_;
    char* frame = out_.data() + start_;
    EncodeFixedBe(frame + kFrameLengthOffset, out_.size() - start_ - kFrameHeaderSize, 4);
    EncodeFixedBe(frame + kBetsCountOffset, count_, 2);
  }

  std::string& out_;
  std::size_t start_;
  std::uint64_t seq_;
  std::uint16_t count_ = 0;
};

// Rewrites the sequence number of the BETS frame at the start of `frame`.
// An agency renumbers the batches it has in flight when the server rejected
// an earlier one (a rejected batch does not use up its number).
void SetBetsFrameSeq(std::string& frame, std::uint64_t seq);

// --- Decoders -----------------------------------------------------------

Result<std::uint32_t> DecodeHello(std::string_view payload);
Result<Welcome> DecodeWelcome(std::string_view payload);
Result<Ack> DecodeAck(std::string_view payload);
Result<std::uint64_t> DecodeFinishedAck(std::string_view payload);
Result<ErrorReply> DecodeError(std::string_view payload);
// Appends the documents (views into payload) and returns the `last` flag.
Result<bool> DecodeWinners(std::string_view payload, std::vector<std::string_view>& documents);

// Walks the bet rows of a BETS payload without copying them. Construct,
// check Start(), then call Next() until it returns std::nullopt; a payload
// that ends inside a row, or has bytes after the last one, turns into an
// Error from Next(). The rows are not checked here (ParseBetRow does); the
// payload must outlive the views.
class BetBatchDecoder {
 public:
  explicit BetBatchDecoder(std::string_view payload) : payload_(payload) {}
  // Reads seq and count; fails when the payload is too short.
  Status Start();
  std::uint64_t seq() const { return seq_; }
  std::uint16_t count() const { return count_; }
  // The next row, std::nullopt after the last one.
  Result<std::optional<std::string_view>> Next();
  // The same for the hot path, without building a Result per row: sets `row`
  // and returns true, or returns false after the last row or on a malformed
  // payload, when failed() tells which and Next() the error.
  bool NextRow(std::string_view& row) {
    if (read_ == count_) {
      failed_ = pos_ != payload_.size();
      return false;
    }
    // A row: its length (big-endian u16), then its bytes.
    if (payload_.size() - pos_ < 2) {
      failed_ = true;
      return false;
    }
    const std::size_t size = GetFixedBe(payload_.data() + pos_, 2);
    if (payload_.size() - pos_ - 2 < size) {
      failed_ = true;
      return false;
    }
    row = payload_.substr(pos_ + 2, size);
    pos_ += 2 + size;
    ++read_;
    return true;
  }
  bool failed() const { return failed_; }

 private:
  std::string_view payload_;
  std::size_t pos_ = 0;
  std::uint64_t seq_ = 0;
  std::uint16_t count_ = 0;
  std::uint16_t read_ = 0;
  bool failed_ = false;
};

// The batch digest of a BETS payload whose rows are stored at positions
// `first`, `first` + 1, ...: the sum, mod 2^64, of their RowDigests
// (wire/row_digest.h), what the server keeps of a stored batch to tell a
// re-sent batch from another one with the same number. std::nullopt when
// the payload does not decode.
std::optional<std::uint64_t> BetsPayloadDigest(std::string_view payload, std::uint64_t first);

}  // namespace lottery
