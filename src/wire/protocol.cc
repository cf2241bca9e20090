#include "wire/protocol.h"

#include "common/coding.h"
#include "wire/error_codes.h"
#include "wire/row_digest.h"

#include <fmt/format.h>

#include <cassert>
#include <cstring>
#include <limits>

namespace lottery {
namespace {

// The wire's integers, big-endian (common/coding.h), by their width.
void PutU8(std::string& out, std::uint8_t v) { PutFixedBe(out, v, 1); }
void PutU16(std::string& out, std::uint16_t v) { PutFixedBe(out, v, 2); }
void PutU32(std::string& out, std::uint32_t v) { PutFixedBe(out, v, 4); }
void PutU64(std::string& out, std::uint64_t v) { PutFixedBe(out, v, 8); }

void PutStr(std::string& out, std::string_view s) {
  PutU16(out, static_cast<std::uint16_t>(s.size()));
  out.append(s);
}

// Appends a header with a zero length; FinishFrame() fills it in.
std::size_t BeginFrame(std::string& out, MessageType type) {
  std::size_t start = out.size();
  PutU8(out, static_cast<std::uint8_t>(type));
  PutU32(out, 0);
  return start;
}

void FinishFrame(std::string& out, std::size_t start) {
  EncodeFixedBe(out.data() + start + kFrameLengthOffset, out.size() - start - kFrameHeaderSize, 4);
}

// Bounds-checked big-endian reader over a payload.
class Cursor {
 public:
  explicit Cursor(std::string_view data, std::size_t pos = 0) : data_(data), pos_(pos) {}
  bool U8(std::uint8_t& v) { return Fixed(v, 1); }
  bool U16(std::uint16_t& v) { return Fixed(v, 2); }
  bool U32(std::uint32_t& v) { return Fixed(v, 4); }
  bool U64(std::uint64_t& v) { return Fixed(v, 8); }
  bool Str(std::string_view& s) {
    std::uint16_t len = 0;
    if (!U16(len) || left() < len) return false;
    s = data_.substr(pos_, len);
    pos_ += len;
    return true;
  }
  std::size_t left() const { return data_.size() - pos_; }
  std::size_t pos() const { return pos_; }

 private:
  // Reads a `bytes`-wide big-endian integer; false when fewer are left.
  template <typename T>
  bool Fixed(T& v, int bytes) {
    if (left() < static_cast<std::size_t>(bytes)) return false;
    v = static_cast<T>(GetFixedBe(data_.data() + pos_, bytes));
    pos_ += static_cast<std::size_t>(bytes);
    return true;
  }
  std::string_view data_;
  std::size_t pos_;
};

std::unexpected<Error> Malformed(std::string_view what) {
  return Fail(ErrorKind::kProtocol, fmt::format("malformed {}", what));
}

}  // namespace

const char* MessageTypeName(std::uint8_t type) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::kHello: return "HELLO";
    case MessageType::kBets: return "BETS";
    case MessageType::kFinished: return "FINISHED";
    case MessageType::kWinnersQuery: return "WINNERS_QUERY";
    case MessageType::kEcho: return "ECHO";
    case MessageType::kWelcome: return "WELCOME";
    case MessageType::kAck: return "ACK";
    case MessageType::kFinishedAck: return "FINISHED_ACK";
    case MessageType::kWinners: return "WINNERS";
    case MessageType::kEchoReply: return "ECHO_REPLY";
    case MessageType::kError: return "ERROR";
  }
  return "UNKNOWN";
}

bool IsKnownMessageType(std::uint8_t type) {
  return std::string_view(MessageTypeName(type)) != "UNKNOWN";
}

const char* ErrorCodeName(ErrorCode code) { return InfoFor(code).name.data(); }

bool ErrorClosesConnection(ErrorCode code) { return InfoFor(code).closes; }

FrameHeader DecodeFrameHeader(std::string_view bytes) {
  assert(bytes.size() >= kFrameHeaderSize);
  FrameHeader h;
  h.type = static_cast<std::uint8_t>(bytes[0]);
  h.length = static_cast<std::uint32_t>(GetFixedBe(bytes.data() + kFrameLengthOffset, 4));
  return h;
}

void EncodeHello(std::string& out, std::uint32_t agency_id) {
  std::size_t f = BeginFrame(out, MessageType::kHello);
  PutU32(out, agency_id);
  FinishFrame(out, f);
}

void EncodeWelcome(std::string& out, const Welcome& welcome) {
  std::size_t f = BeginFrame(out, MessageType::kWelcome);
  PutU64(out, welcome.last_seq);
  PutU8(out, welcome.finished ? 1 : 0);
  PutU64(out, welcome.bets_stored);
  PutU64(out, welcome.stored_digest);
  PutU64(out, welcome.round);
  PutU8(out, welcome.round_state);
  FinishFrame(out, f);
}

void EncodeAck(std::string& out, const Ack& ack) {
  std::size_t f = BeginFrame(out, MessageType::kAck);
  PutU64(out, ack.seq);
  PutU16(out, ack.count);
  FinishFrame(out, f);
}

void EncodeFinished(std::string& out) { FinishFrame(out, BeginFrame(out, MessageType::kFinished)); }

void EncodeFinishedAck(std::string& out, std::uint64_t bets_stored) {
  std::size_t f = BeginFrame(out, MessageType::kFinishedAck);
  PutU64(out, bets_stored);
  FinishFrame(out, f);
}

void EncodeWinnersQuery(std::string& out) {
  FinishFrame(out, BeginFrame(out, MessageType::kWinnersQuery));
}

void EncodeWinners(std::string& out, bool last, std::span<const std::string_view> documents) {
  std::size_t f = BeginFrame(out, MessageType::kWinners);
  PutU8(out, last ? 1 : 0);
  PutU16(out, static_cast<std::uint16_t>(documents.size()));
  for (std::string_view d : documents) PutStr(out, d);
  FinishFrame(out, f);
}

void EncodeWinnersFrames(std::string& out, std::span<const std::string_view> documents) {
  constexpr std::size_t kFixed = kFrameHeaderSize + 1 + 2;
  std::size_t begin = 0;
  while (true) {
    std::size_t size = kFixed;
    std::size_t end = begin;
    while (end < documents.size() && end - begin < 0xffff &&
           size + 2 + documents[end].size() <= kMaxFrameSize) {
      size += 2 + documents[end].size();
      ++end;
    }
    bool last = end >= documents.size();
    EncodeWinners(out, last, documents.subspan(begin, end - begin));
    if (last) return;
    begin = end;
  }
}

void EncodeEcho(std::string& out, std::string_view payload) {
  std::size_t f = BeginFrame(out, MessageType::kEcho);
  out.append(payload);
  FinishFrame(out, f);
}

void EncodeEchoReply(std::string& out, std::string_view payload) {
  std::size_t f = BeginFrame(out, MessageType::kEchoReply);
  out.append(payload);
  FinishFrame(out, f);
}

void EncodeError(std::string& out, const ErrorReply& error) {
  std::size_t f = BeginFrame(out, MessageType::kError);
  PutU16(out, static_cast<std::uint16_t>(error.code));
  PutU32(out, error.bet_index);
  // Keep the frame within the limit whatever the message says.
  std::string_view msg = error.message;
  if (msg.size() > 1024) msg = msg.substr(0, 1024);
  PutStr(out, msg);
  FinishFrame(out, f);
}

BetBatchEncoder::BetBatchEncoder(std::string& out, std::uint64_t seq)
    : out_(out), start_(out.size()), seq_(seq) {
  PutU8(out_, static_cast<std::uint8_t>(MessageType::kBets));
  PutU32(out_, 0);
  PutU64(out_, seq);
  PutU16(out_, 0);
  FinishFrame(out_, start_);
}

std::size_t BetBatchEncoder::EncodedSize(const BetView& bet) { return 2 + BetRowSize(bet); }

bool BetBatchEncoder::Fits(const BetView& bet) const { return FitsRow(BetRowSize(bet)); }

bool BetBatchEncoder::Add(const BetView& bet) {
  const std::size_t row_size = BetRowSize(bet);
  if (!FitsRow(row_size)) return false;
  // Straight into the frame: one resize, then plain writes.
  const std::size_t at = out_.size();
  const std::size_t size = at + 2 + row_size;
  // The size is returned from the outer scope: libstdc++ 12 passes the
  // lambda the capacity, not the requested size.
  out_.resize_and_overwrite(size, [&](char* base, std::size_t) {
    char* p = base + at;
    *p++ = static_cast<char>(row_size >> 8);
    *p++ = static_cast<char>(row_size & 0xff);
    PutBetRow(p, bet);
    return size;
  });
  Added();
  return true;
}

std::optional<std::uint64_t> BetsPayloadDigest(std::string_view payload, std::uint64_t first) {
  BetBatchDecoder decoder(payload);
  if (!decoder.Start()) return std::nullopt;
  std::uint64_t digest = 0;
  std::string_view row;
  for (std::uint64_t position = first; decoder.NextRow(row); ++position) {
    digest += RowDigest(row, position);
  }
  if (decoder.failed()) return std::nullopt;
  return digest;
}

void SetBetsFrameSeq(std::string& frame, std::uint64_t seq) {
  EncodeFixedBe(frame.data() + kBetsSeqOffset, seq, 8);
}

Result<std::uint32_t> DecodeHello(std::string_view payload) {
  Cursor c(payload);
  std::uint32_t id = 0;
  if (!c.U32(id) || c.left() != 0) return Malformed("HELLO");
  return id;
}

Result<Welcome> DecodeWelcome(std::string_view payload) {
  Cursor c(payload);
  Welcome w;
  std::uint8_t finished = 0;
  if (payload.size() != kWelcomeSize) {
    return Fail(ErrorKind::kProtocol,
                fmt::format("malformed WELCOME: {} bytes, not {}", payload.size(), kWelcomeSize));
  }
  if (!c.U64(w.last_seq) || !c.U8(finished) || finished > 1 || !c.U64(w.bets_stored) ||
      !c.U64(w.stored_digest) || !c.U64(w.round) || !c.U8(w.round_state) ||
      w.round_state < kRoundOpen || w.round_state > kRoundDrawn) {
    return Malformed("WELCOME");
  }
  w.finished = finished == 1;
  return w;
}

Result<Ack> DecodeAck(std::string_view payload) {
  Cursor c(payload);
  Ack a;
  if (!c.U64(a.seq) || !c.U16(a.count) || c.left() != 0) return Malformed("ACK");
  return a;
}

Result<std::uint64_t> DecodeFinishedAck(std::string_view payload) {
  Cursor c(payload);
  std::uint64_t stored = 0;
  if (!c.U64(stored) || c.left() != 0) return Malformed("FINISHED_ACK");
  return stored;
}

Result<ErrorReply> DecodeError(std::string_view payload) {
  Cursor c(payload);
  std::uint16_t code = 0;
  ErrorReply e;
  std::string_view msg;
  if (!c.U16(code) || !c.U32(e.bet_index) || !c.Str(msg) || c.left() != 0) {
    return Malformed("ERROR");
  }
  e.code = static_cast<ErrorCode>(code);
  e.message = std::string(msg);
  return e;
}

Result<bool> DecodeWinners(std::string_view payload, std::vector<std::string_view>& documents) {
  Cursor c(payload);
  std::uint8_t last = 0;
  std::uint16_t count = 0;
  if (!c.U8(last) || last > 1 || !c.U16(count)) return Malformed("WINNERS");
  for (std::uint16_t i = 0; i < count; ++i) {
    std::string_view d;
    if (!c.Str(d)) return Malformed("WINNERS");
    documents.push_back(d);
  }
  if (c.left() != 0) return Malformed("WINNERS");
  return last == 1;
}

Status BetBatchDecoder::Start() {
  Cursor c(payload_);
  if (!c.U64(seq_) || !c.U16(count_)) return Malformed("BETS header");
  // Sequence numbers start at 1, and a batch holds at least one bet: an
  // empty batch or batch 0 would be acknowledged for nothing.
  if (seq_ == 0) return Fail(ErrorKind::kProtocol, "malformed BETS: seq 0 (batches count from 1)");
  if (count_ == 0) return Fail(ErrorKind::kProtocol, "malformed BETS: no bets (count 0)");
  pos_ = c.pos();
  return Ok();
}

Result<std::optional<std::string_view>> BetBatchDecoder::Next() {
  if (read_ == count_ && pos_ != payload_.size()) {
    return Fail(ErrorKind::kProtocol, "malformed BETS: bytes after the last bet");
  }
  std::string_view row;
  if (NextRow(row)) return std::optional<std::string_view>(row);
  if (!failed_) return std::optional<std::string_view>();
  return Fail(ErrorKind::kProtocol, fmt::format("malformed BETS: bet {} is truncated", read_));
}

}  // namespace lottery
