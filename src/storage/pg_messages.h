// The messages between a server's processes and its PostgreSQL committers
// (storage/pg_committer.h), over a local stream socket: one request and its
// reply per connection. Format (docs/STORAGE.md, "Committer messages"), integers
// little-endian (common/coding.h):
//
//   frame   := length u32 (bytes after it) | kind u8 | body
//   request bodies by kind:
//     kStore     round u64 | agency u32 | prev_seq u64 | first_position u64 |
//                batches u32 | batches x (seq u64 | count u32 | rows_end u64 |
//                digest u64) | rows (the rest)
//     kProgress  round u64 | agency u32
//     kFinished  round u64 | agency u32
//     kClose     round u64
//     kDraw      round u64 | agencies u32 | winning_number u32 | drawn_at i64
//     kOpen      round u64
//   reply body := status u8 (kReplyOk, kReplyBusy, kReplyFailed) |
//                 ok: the kind's answer; else: a message (the rest)
//     kStore     skipped u32 | progress
//     kProgress  progress
//     kFinished, kClose   yes u8
//     kDraw      the round result (EncodeRoundResult)
//     kOpen      round u64
//   progress := last_seq u64 | bets_stored u64 | stored_digest u64 | finished u8
//
// Kept on one machine and one release: a committer and its clients are
// forked from the same parent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "storage/pg_store.h"

namespace lottery {

enum class PgRequestKind : std::uint8_t {
  kStore = 1,
  kProgress = 2,
  kFinished = 3,
  kClose = 4,
  kDraw = 5,
  kOpen = 6,
};

inline constexpr std::uint8_t kReplyOk = 0;
inline constexpr std::uint8_t kReplyBusy = 1;    // fenced, or the round is not open
inline constexpr std::uint8_t kReplyFailed = 2;  // the database failed
// length u32 before every frame.
inline constexpr std::size_t kPgFrameHeader = 4;
// The largest frame either side accepts: a worker's pending rows (4 MiB
// at most, PgBatchStore::Limits) plus their batches, with room to spare.
inline constexpr std::uint32_t kMaxPgFrame = 8u << 20;

// A request. `rows` and `batches` are set for kStore only; `rows` views
// bytes that outlive the request (the worker's pending rows when encoding,
// the received frame when decoded), so a batch's rows are never copied on
// their way to the committer.
struct PgRequest {
  PgRequestKind kind = PgRequestKind::kProgress;
  std::uint64_t round = 0;
  std::uint32_t agency = 0;
  std::uint64_t prev_seq = 0;
  std::uint64_t first_position = 0;
  std::vector<BatchExtent> batches;
  std::string_view rows;
  std::uint32_t agencies = 0;
  std::uint32_t winning_number = 0;
  std::int64_t drawn_at = 0;
};

// Appends the whole frame of `request` to `out`.
void EncodePgRequest(std::string& out, const PgRequest& request);
// Appends the frame of `request` up to its rows (its length prefix counts
// them): the frame is these bytes followed by `request.rows`, which the
// sender passes on from where they lie.
void EncodePgRequestHead(std::string& out, const PgRequest& request);
// `frame` is one whole frame, its length prefix included. The request's
// `rows` view `frame`.
Result<PgRequest> DecodePgRequest(std::string_view frame);

// A decoded reply: `status`, then either `message` or the kind's answer.
struct PgReply {
  std::uint8_t status = kReplyOk;
  std::string message;
  std::uint32_t skipped = 0;
  PgAgencyProgress progress;
  bool yes = false;
  std::uint64_t round = 0;
  std::string result;  // EncodeRoundResult bytes
};

void EncodePgReply(std::string& out, PgRequestKind kind, const PgReply& reply);
Result<PgReply> DecodePgReply(PgRequestKind kind, std::string_view frame);

// The length of the frame starting `bytes` (prefix included) once its
// prefix is there; nullopt before. Fails on a length beyond kMaxPgFrame.
Result<std::optional<std::size_t>> PgFrameLength(std::string_view bytes);

}  // namespace lottery
