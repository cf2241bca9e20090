#include "storage/pg_messages.h"

#include <fmt/format.h>

#include "common/coding.h"

namespace lottery {
namespace {

// Reads fixed-width fields off the front of a body; `ok` turns false at the
// first read past its end.
class BodyReader {
 public:
  explicit BodyReader(std::string_view bytes) : rest_(bytes) {}
  std::uint64_t Fixed(int bytes) {
    if (rest_.size() < static_cast<std::size_t>(bytes)) {
      ok_ = false;
      rest_ = {};
      return 0;
    }
    std::uint64_t v = GetFixedLe(rest_.data(), bytes);
    rest_.remove_prefix(static_cast<std::size_t>(bytes));
    return v;
  }
  std::string_view Rest() { return std::exchange(rest_, {}); }
  bool ok() const { return ok_; }

 private:
  std::string_view rest_;
  bool ok_ = true;
};

// Writes the length prefix of the frame that starts at `start`, which ends
// `tail` bytes past the end of `out`.
void SealFrame(std::string& out, std::size_t start, std::size_t tail = 0) {
  EncodeFixedLe(out.data() + start, out.size() + tail - start - kPgFrameHeader, 4);
}

void PutProgress(std::string& out, const PgAgencyProgress& p) {
  PutFixedLe(out, p.last_seq, 8);
  PutFixedLe(out, p.bets_stored, 8);
  PutFixedLe(out, p.stored_digest, 8);
  PutFixedLe(out, p.finished ? 1 : 0, 1);
}

PgAgencyProgress GetProgress(BodyReader& in) {
  PgAgencyProgress p;
  p.last_seq = in.Fixed(8);
  p.bets_stored = in.Fixed(8);
  p.stored_digest = in.Fixed(8);
  p.finished = in.Fixed(1) != 0;
  return p;
}

void PutStoreBody(std::string& out, const PgRequest& r) {
  PutFixedLe(out, r.agency, 4);
  PutFixedLe(out, r.prev_seq, 8);
  PutFixedLe(out, r.first_position, 8);
  PutFixedLe(out, r.batches.size(), 4);
  for (const BatchExtent& b : r.batches) {
    PutFixedLe(out, b.seq, 8);
    PutFixedLe(out, b.count, 4);
    PutFixedLe(out, b.rows_end, 8);
    PutFixedLe(out, b.digest, 8);
  }
}

Status GetStoreBody(BodyReader& in, PgRequest& r) {
  r.agency = static_cast<std::uint32_t>(in.Fixed(4));
  r.prev_seq = in.Fixed(8);
  r.first_position = in.Fixed(8);
  const std::uint64_t batches = in.Fixed(4);
  // Each batch takes 28 bytes: a count beyond the frame is a lie.
  if (!in.ok() || batches == 0 || batches > kMaxPgFrame / 28) {
    return Fail(ErrorKind::kProtocol, "committer request: bad batch count");
  }
  for (std::uint64_t i = 0; i < batches; ++i) {
    BatchExtent b;
    b.seq = in.Fixed(8);
    b.count = static_cast<std::uint32_t>(in.Fixed(4));
    b.rows_end = in.Fixed(8);
    b.digest = in.Fixed(8);
    r.batches.push_back(b);
  }
  r.rows = in.Rest();
  if (!in.ok() || r.batches.back().rows_end != r.rows.size()) {
    return Fail(ErrorKind::kProtocol, "committer request: rows do not match their batches");
  }
  return Ok();
}

bool KnownKind(std::uint8_t kind) {
  return kind >= static_cast<std::uint8_t>(PgRequestKind::kStore) &&
         kind <= static_cast<std::uint8_t>(PgRequestKind::kOpen);
}

// The body of a whole frame, after its prefix and kind byte.
Result<std::string_view> FrameBody(std::string_view frame, std::uint8_t& kind) {
  if (frame.size() < kPgFrameHeader + 1 ||
      GetFixedLe(frame.data(), 4) != frame.size() - kPgFrameHeader) {
    return Fail(ErrorKind::kProtocol, "committer message: truncated frame");
  }
  kind = static_cast<std::uint8_t>(frame[kPgFrameHeader]);
  return frame.substr(kPgFrameHeader + 1);
}

}  // namespace

void EncodePgRequest(std::string& out, const PgRequest& r) {
  EncodePgRequestHead(out, r);
  if (r.kind == PgRequestKind::kStore) out += r.rows;
}

void EncodePgRequestHead(std::string& out, const PgRequest& r) {
  const std::size_t start = out.size();
  out.append(kPgFrameHeader, '\0');
  out.push_back(static_cast<char>(r.kind));
  PutFixedLe(out, r.round, 8);
  switch (r.kind) {
    case PgRequestKind::kStore: PutStoreBody(out, r); break;
    case PgRequestKind::kProgress:
    case PgRequestKind::kFinished: PutFixedLe(out, r.agency, 4); break;
    case PgRequestKind::kDraw:
      PutFixedLe(out, r.agencies, 4);
      PutFixedLe(out, r.winning_number, 4);
      PutFixedLe(out, static_cast<std::uint64_t>(r.drawn_at), 8);
      break;
    case PgRequestKind::kClose:
    case PgRequestKind::kOpen: break;
  }
  SealFrame(out, start, r.kind == PgRequestKind::kStore ? r.rows.size() : 0);
}

Result<PgRequest> DecodePgRequest(std::string_view frame) {
  std::uint8_t kind = 0;
  auto body = FrameBody(frame, kind);
  if (!body) return std::unexpected(body.error());
  if (!KnownKind(kind)) {
    return Fail(ErrorKind::kProtocol, fmt::format("committer request: unknown kind {}", kind));
  }
  PgRequest r;
  r.kind = static_cast<PgRequestKind>(kind);
  BodyReader in(*body);
  r.round = in.Fixed(8);
  switch (r.kind) {
    case PgRequestKind::kStore:
      if (Status st = GetStoreBody(in, r); !st) return std::unexpected(st.error());
      break;
    case PgRequestKind::kProgress:
    case PgRequestKind::kFinished: r.agency = static_cast<std::uint32_t>(in.Fixed(4)); break;
    case PgRequestKind::kDraw:
      r.agencies = static_cast<std::uint32_t>(in.Fixed(4));
      r.winning_number = static_cast<std::uint32_t>(in.Fixed(4));
      r.drawn_at = static_cast<std::int64_t>(in.Fixed(8));
      break;
    case PgRequestKind::kClose:
    case PgRequestKind::kOpen: break;
  }
  if (!in.ok() || !in.Rest().empty()) {
    return Fail(ErrorKind::kProtocol, "committer request: wrong length for its kind");
  }
  return r;
}

void EncodePgReply(std::string& out, PgRequestKind kind, const PgReply& reply) {
  const std::size_t start = out.size();
  out.append(kPgFrameHeader, '\0');
  out.push_back(static_cast<char>(reply.status));
  if (reply.status != kReplyOk) {
    out += reply.message;
    SealFrame(out, start);
    return;
  }
  switch (kind) {
    case PgRequestKind::kStore:
      PutFixedLe(out, reply.skipped, 4);
      PutProgress(out, reply.progress);
      break;
    case PgRequestKind::kProgress: PutProgress(out, reply.progress); break;
    case PgRequestKind::kFinished:
    case PgRequestKind::kClose: PutFixedLe(out, reply.yes ? 1 : 0, 1); break;
    case PgRequestKind::kDraw: out += reply.result; break;
    case PgRequestKind::kOpen: PutFixedLe(out, reply.round, 8); break;
  }
  SealFrame(out, start);
}

Result<PgReply> DecodePgReply(PgRequestKind kind, std::string_view frame) {
  std::uint8_t status = 0;
  auto body = FrameBody(frame, status);
  if (!body) return std::unexpected(body.error());
  PgReply reply;
  reply.status = status;
  BodyReader in(*body);
  if (status != kReplyOk) {
    reply.message = std::string(in.Rest());
    return reply;
  }
  switch (kind) {
    case PgRequestKind::kStore:
      reply.skipped = static_cast<std::uint32_t>(in.Fixed(4));
      reply.progress = GetProgress(in);
      break;
    case PgRequestKind::kProgress: reply.progress = GetProgress(in); break;
    case PgRequestKind::kFinished:
    case PgRequestKind::kClose: reply.yes = in.Fixed(1) != 0; break;
    case PgRequestKind::kDraw: reply.result = std::string(in.Rest()); break;
    case PgRequestKind::kOpen: reply.round = in.Fixed(8); break;
  }
  if (!in.ok() || !in.Rest().empty()) {
    return Fail(ErrorKind::kProtocol, "committer reply: wrong length for its kind");
  }
  return reply;
}

Result<std::optional<std::size_t>> PgFrameLength(std::string_view bytes) {
  if (bytes.size() < kPgFrameHeader) return std::optional<std::size_t>();
  const std::uint64_t length = GetFixedLe(bytes.data(), 4);
  if (length == 0 || length > kMaxPgFrame) {
    return Fail(ErrorKind::kProtocol,
                fmt::format("committer message of {} bytes (limit {})", length, kMaxPgFrame));
  }
  return std::optional<std::size_t>(kPgFrameHeader + length);
}

}  // namespace lottery
