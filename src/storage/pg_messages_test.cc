#include "storage/pg_messages.h"

#include <cctype>
#include <string>

#include <doctest/doctest.h>

#include "common/test_util.h"

namespace lottery {
namespace {

// The two examples of docs/STORAGE.md, "Committer messages" (the request
// and the reply), read from the document itself.
std::string DocumentedFrame(int which) {
  const std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "STORAGE.md");
  auto at = doc.find("## Committer messages");
  REQUIRE(at != std::string::npos);
  at = doc.find("```\n", doc.find("Example:", at));
  auto close = doc.find("```", at + 4);
  for (int i = 0; i < which; ++i) {
    at = doc.find("```\n", close + 3);
    close = doc.find("```", at + 4);
  }
  REQUIRE(close != std::string::npos);
  std::string hex;
  for (char c : doc.substr(at + 4, close - at - 4)) {
    if (std::isxdigit(static_cast<unsigned char>(c))) hex.push_back(c);
  }
  std::string out;
  for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

const std::string kRow = "2,Santiago Lionel,Lorca,30904465,1999-03-17,2201\r\n";

PgRequest ExampleStore() {
  PgRequest r;
  r.kind = PgRequestKind::kStore;
  r.round = 1;
  r.agency = 2;
  r.batches.push_back(BatchExtent{1, 1, kRow.size(), 0, 0x0102030405060708});
  r.rows = kRow;
  return r;
}

TEST_CASE("a store request is the byte layout docs/STORAGE.md shows, both ways") {
  std::string frame;
  EncodePgRequest(frame, ExampleStore());
  const std::string documented = DocumentedFrame(0);
  CHECK(frame == documented);
  auto decoded = DecodePgRequest(documented);
  REQUIRE(decoded);
  CHECK(decoded->agency == 2);
  CHECK(decoded->round == 1);
  REQUIRE(decoded->batches.size() == 1);
  CHECK(decoded->batches[0].digest == 0x0102030405060708u);
  CHECK(decoded->rows == kRow);
}

TEST_CASE(
    "a store frame is its head followed by the rows, which a decoded request views in place") {
  std::string head;
  EncodePgRequestHead(head, ExampleStore());
  std::string whole;
  EncodePgRequest(whole, ExampleStore());
  CHECK(head + kRow == whole);
  auto decoded = DecodePgRequest(whole);
  REQUIRE(decoded);
  CHECK(decoded->rows.data() == whole.data() + head.size());
  PgRequest progress;
  progress.kind = PgRequestKind::kProgress;
  progress.rows = kRow;  // only a store carries rows
  std::string progress_head, progress_whole;
  EncodePgRequestHead(progress_head, progress);
  EncodePgRequest(progress_whole, progress);
  CHECK(progress_head.size() == kPgFrameHeader + 1 + 8 + 4);
  CHECK(progress_whole == progress_head);
  CHECK(DecodePgRequest(progress_head));
}

TEST_CASE("a store reply is the byte layout docs/STORAGE.md shows, both ways") {
  PgReply reply;
  reply.progress = PgAgencyProgress{2, 1, 1, 0x0102030405060708, false};
  std::string frame;
  EncodePgReply(frame, PgRequestKind::kStore, reply);
  CHECK(frame == DocumentedFrame(1));
  auto decoded = DecodePgReply(PgRequestKind::kStore, frame);
  REQUIRE(decoded);
  CHECK(decoded->progress.bets_stored == 1);
  CHECK(decoded->progress.stored_digest == 0x0102030405060708u);
}

TEST_CASE("every kind survives the round trip, and errors carry their message") {
  for (auto kind : {PgRequestKind::kProgress, PgRequestKind::kFinished, PgRequestKind::kClose,
                    PgRequestKind::kDraw, PgRequestKind::kOpen}) {
    PgRequest r;
    r.kind = kind;
    r.round = 7;
    r.agency = kind == PgRequestKind::kClose || kind == PgRequestKind::kOpen ||
                       kind == PgRequestKind::kDraw
                   ? 0
                   : 3;
    r.agencies = kind == PgRequestKind::kDraw ? 5 : 0;
    r.winning_number = kind == PgRequestKind::kDraw ? 7574 : 0;
    r.drawn_at = kind == PgRequestKind::kDraw ? -1 : 0;
    std::string frame;
    EncodePgRequest(frame, r);
    auto back = DecodePgRequest(frame);
    REQUIRE(back);
    CHECK(back->kind == kind);
    CHECK(back->round == 7);
    CHECK(back->agency == r.agency);
    CHECK(back->agencies == r.agencies);
    CHECK(back->drawn_at == r.drawn_at);
  }
  PgReply busy;
  busy.status = kReplyBusy;
  busy.message = "fenced: epoch 3, the lease holds 4";
  std::string frame;
  EncodePgReply(frame, PgRequestKind::kStore, busy);
  auto back = DecodePgReply(PgRequestKind::kStore, frame);
  REQUIRE(back);
  CHECK(back->status == kReplyBusy);
  CHECK(back->message == busy.message);
}

TEST_CASE("truncated, oversized, lying or unknown frames are refused") {
  std::string frame;
  EncodePgRequest(frame, ExampleStore());
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    CHECK_FALSE(DecodePgRequest(frame.substr(0, cut)));
  }
  std::string unknown = frame;
  unknown[4] = 9;
  CHECK_FALSE(DecodePgRequest(unknown));
  std::string lying = frame;
  lying[4 + 1 + 8 + 4 + 8 + 8] = 2;  // two batches announced, one there
  CHECK_FALSE(DecodePgRequest(lying));
  std::string huge("\xff\xff\xff\x7f", 4);
  CHECK_FALSE(PgFrameLength(huge));
  CHECK(PgFrameLength(frame.substr(0, 3)).value() == std::nullopt);
  CHECK(PgFrameLength(frame).value() == frame.size());
}

}  // namespace
}  // namespace lottery
