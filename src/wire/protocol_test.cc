#include "wire/protocol.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cctype>
#include <string>
#include <vector>

#include "common/test_util.h"
#include "wire/row_digest.h"

namespace lottery {
namespace {

using testing::Hex;

// The fenced code blocks of docs/PROTOCOL.md's "Byte-level examples", each as
// the bytes it spells: on every line, the leading run of two-digit hex
// tokens (what follows, the annotation, is ignored).
std::vector<std::string> DocumentedVectors() {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "PROTOCOL.md");
  auto at = doc.find("## Byte-level examples");
  REQUIRE(at != std::string::npos);
  std::vector<std::string> blocks;
  std::istringstream in(doc.substr(at));
  std::string line;
  bool inside = false;
  std::string current;
  while (std::getline(in, line)) {
    if (line.rfind("```", 0) == 0) {
      if (inside) blocks.push_back(current);
      current.clear();
      inside = !inside;
      continue;
    }
    if (!inside) continue;
    std::istringstream tokens(line);
    std::string token;
    while (tokens >> token) {
      if (token.size() != 2 || !std::isxdigit(static_cast<unsigned char>(token[0])) ||
          !std::isxdigit(static_cast<unsigned char>(token[1]))) {
        break;
      }
      current.push_back(static_cast<char>(std::stoi(token, nullptr, 16)));
    }
  }
  return blocks;
}

TEST_CASE("encoders match the byte vectors of docs/PROTOCOL.md") {
  auto vectors = DocumentedVectors();
  REQUIRE(vectors.size() == 8);

  std::string hello;
  EncodeHello(hello, 3);
  CHECK(Hex(hello) == Hex(vectors[0]));

  std::string welcome;
  EncodeWelcome(welcome, Welcome{0, false, 0, 0, 1, kRoundOpen});
  EncodeWelcome(welcome, Welcome{410, false, 410, 0x1122334455667788ULL, 3, kRoundClosed});
  CHECK(Hex(welcome) == Hex(vectors[1]));

  std::string bets;
  BetBatchEncoder encoder(bets, 1);
  BetView bet{0, "Santiago Lionel", "Lorca", "30904465", "1999-03-17", 2201};
  REQUIRE(encoder.Add(bet));
  CHECK(Hex(bets) == Hex(vectors[2]));

  std::string ack;
  EncodeAck(ack, Ack{1, 1});
  CHECK(Hex(ack) == Hex(vectors[3]));

  std::string finished;
  EncodeFinished(finished);
  EncodeFinishedAck(finished, 1);
  CHECK(Hex(finished) == Hex(vectors[4]));

  std::string winners;
  EncodeWinnersQuery(winners);
  std::vector<std::string_view> docs = {"30904465", "00012345"};
  EncodeWinnersFrames(winners, docs);
  CHECK(Hex(winners) == Hex(vectors[5]));

  std::string echo;
  EncodeEcho(echo, "ping");
  EncodeEchoReply(echo, "ping");
  CHECK(Hex(echo) == Hex(vectors[6]));

  std::string error;
  EncodeError(error, ErrorReply{ErrorCode::kOutOfOrder, kNoBetIndex, "hello first"});
  CHECK(Hex(error) == Hex(vectors[7]));
}

TEST_CASE("decoders read the documented vectors back") {
  auto vectors = DocumentedVectors();
  REQUIRE(vectors.size() == 8);
  auto payload = [](const std::string& frame) {
    return std::string_view(frame).substr(kFrameHeaderSize);
  };
  auto header = [](const std::string& frame) { return DecodeFrameHeader(frame); };

  CHECK(header(vectors[0]).type == static_cast<std::uint8_t>(MessageType::kHello));
  CHECK(header(vectors[0]).length == 4);
  CHECK(DecodeHello(payload(vectors[0])).value() == 3);

  // Two WELCOME frames of 5 + 34 bytes each.
  REQUIRE(vectors[1].size() == 2 * (kFrameHeaderSize + kWelcomeSize));
  CHECK(header(vectors[1]).length == kWelcomeSize);
  auto w = DecodeWelcome(payload(vectors[1]).substr(0, kWelcomeSize));
  REQUIRE(w);
  CHECK(w->last_seq == 0);
  CHECK_FALSE(w->finished);
  CHECK(w->bets_stored == 0);
  CHECK(w->stored_digest == 0);
  CHECK(w->round == 1);
  CHECK(w->round_state == kRoundOpen);
  auto resumed =
      DecodeWelcome(std::string_view(vectors[1]).substr(2 * kFrameHeaderSize + kWelcomeSize));
  REQUIRE(resumed);
  CHECK(resumed->last_seq == 410);
  CHECK(resumed->bets_stored == 410);
  CHECK(resumed->stored_digest == 0x1122334455667788ULL);
  CHECK(resumed->round == 3);
  CHECK(resumed->round_state == kRoundClosed);

  BetBatchDecoder decoder(payload(vectors[2]));
  REQUIRE(decoder.Start());
  CHECK(decoder.seq() == 1);
  CHECK(decoder.count() == 1);
  auto row = decoder.Next();
  REQUIRE(row);
  REQUIRE(row->has_value());
  CHECK(**row == "Santiago Lionel,Lorca,30904465,1999-03-17,2201");
  BetView bet;
  std::string scratch;
  REQUIRE_FALSE(ParseBetRow(**row, Date{2026, 12, 1}, bet, scratch));
  CHECK(bet.first_name == "Santiago Lionel");
  CHECK(bet.last_name == "Lorca");
  CHECK(bet.document == "30904465");
  CHECK(bet.birthdate == "1999-03-17");
  CHECK(bet.number == 2201);
  auto end = decoder.Next();
  REQUIRE(end);
  CHECK_FALSE(end->has_value());

  auto ack = DecodeAck(payload(vectors[3]));
  REQUIRE(ack);
  CHECK(ack->seq == 1);
  CHECK(ack->count == 1);

  std::string winners_frame = vectors[5].substr(kFrameHeaderSize);  // skip WINNERS_QUERY
  std::vector<std::string_view> docs;
  auto last = DecodeWinners(payload(winners_frame), docs);
  REQUIRE(last);
  CHECK(*last);
  REQUIRE(docs.size() == 2);
  CHECK(docs[0] == "30904465");
  CHECK(docs[1] == "00012345");

  auto err = DecodeError(payload(vectors[7]));
  REQUIRE(err);
  CHECK(err->code == ErrorCode::kOutOfOrder);
  CHECK(err->bet_index == kNoBetIndex);
  CHECK(err->message == "hello first");
}

TEST_CASE("text fields travel exactly as sent, quoted in their row where they must be") {
  std::string frame;
  BetBatchEncoder encoder(frame, 42);
  BetView tricky{0, "José \"Pepe\", Jr.|O'Brien", "Núñez Díaz", "0012", "2000-02-29", 0};
  REQUIRE(encoder.Add(tricky));
  REQUIRE(encoder.AddRow("Ana,Paz,7,1990-01-01,5"));
  BetBatchDecoder decoder(std::string_view(frame).substr(kFrameHeaderSize));
  REQUIRE(decoder.Start());
  CHECK(decoder.seq() == 42);
  CHECK(decoder.count() == 2);
  auto row = decoder.Next();
  REQUIRE(row);
  REQUIRE(row->has_value());
  CHECK(**row == "\"José \"\"Pepe\"\", Jr.|O'Brien\",Núñez Díaz,0012,2000-02-29,0");
  BetView bet;
  std::string scratch;
  REQUIRE_FALSE(ParseBetRow(**row, Date{2026, 12, 1}, bet, scratch));
  CHECK(bet.first_name == tricky.first_name);
  CHECK(bet.last_name == tricky.last_name);
  CHECK(bet.document == "0012");
  auto plain = decoder.Next();
  REQUIRE(plain);
  REQUIRE(plain->has_value());
  CHECK(**plain == "Ana,Paz,7,1990-01-01,5");
  auto end = decoder.Next();
  REQUIRE(end);
  CHECK_FALSE(end->has_value());
}

TEST_CASE("a BETS frame never exceeds 8 KiB") {
  std::string frame;
  BetBatchEncoder encoder(frame, 1);
  std::string name(400, 'a');
  BetView big{0, name, name, "12345678", "1990-01-01", 1};
  int added = 0;
  while (encoder.Add(big)) ++added;
  CHECK(added > 0);
  CHECK(frame.size() <= kMaxFrameSize);
  CHECK(frame.size() + BetBatchEncoder::EncodedSize(big) > kMaxFrameSize);
  CHECK_FALSE(encoder.Fits(big));
  CHECK(encoder.count() == added);
  // The header's length and count agree with what was added.
  auto h = DecodeFrameHeader(frame);
  CHECK(h.length == frame.size() - kFrameHeaderSize);
  BetBatchDecoder decoder(std::string_view(frame).substr(kFrameHeaderSize));
  REQUIRE(decoder.Start());
  CHECK(decoder.count() == added);
}

TEST_CASE(
    "BetsPayloadDigest sums the rows' RowDigests from the first position; a bad payload has none") {
  std::string frame;
  BetBatchEncoder encoder(frame, 7);
  const BetView bets[] = {{0, "Ana", "Lorca", "123", "1990-01-01", 42},
                          {0, "Ana, María", "O\"Neil", "00045", "2001-02-03", 7574}};
  for (const BetView& bet : bets) REQUIRE(encoder.Add(bet));
  const std::string_view payload = std::string_view(frame).substr(kFrameHeaderSize);
  std::uint64_t expected = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    std::string row;
    AppendBetRowText(row, bets[i]);
    expected += RowDigest(row, 100 + i);
  }
  CHECK(BetsPayloadDigest(payload, 100) == expected);
  CHECK(BetsPayloadDigest(payload, 101) != expected);  // positions count
  CHECK_FALSE(BetsPayloadDigest(payload.substr(0, payload.size() - 1), 100).has_value());
  CHECK_FALSE(BetsPayloadDigest(payload.substr(0, 5), 100).has_value());
  CHECK_FALSE(
      BetsPayloadDigest(std::string(frame.substr(kFrameHeaderSize)) + "x", 100).has_value());
}

TEST_CASE("a BETS frame can be renumbered in place") {
  std::string frame;
  BetBatchEncoder encoder(frame, 0x0102030405060708ULL);
  REQUIRE(encoder.Add(BetView{0, "Ana", "Lorca", "123", "1990-01-01", 42}));
  const std::string before = frame;
  SetBetsFrameSeq(frame, 0x1112131415161718ULL);
  REQUIRE(frame.size() == before.size());
  // Only bytes 5..12 (the seq) change, big-endian.
  CHECK(frame.substr(0, 5) == before.substr(0, 5));
  CHECK(frame.substr(5, 8) == std::string("\x11\x12\x13\x14\x15\x16\x17\x18", 8));
  CHECK(frame.substr(13) == before.substr(13));
  BetBatchDecoder decoder(std::string_view(frame).substr(kFrameHeaderSize));
  REQUIRE(decoder.Start());
  CHECK(decoder.seq() == 0x1112131415161718ULL);
  CHECK(decoder.count() == 1);
}

TEST_CASE("truncated and garbage payloads are rejected, never over-read") {
  std::string frame;
  BetBatchEncoder encoder(frame, 7);
  REQUIRE(encoder.Add(BetView{0, "Ana", "Paz", "1", "1990-01-01", 5}));
  std::string_view payload = std::string_view(frame).substr(kFrameHeaderSize);
  // Every strict prefix of the payload fails somewhere, never crashes.
  for (std::size_t n = 0; n < payload.size(); ++n) {
    BetBatchDecoder d(payload.substr(0, n));
    if (!d.Start()) continue;
    CHECK_FALSE(d.Next().has_value());
  }
  // Trailing garbage after the announced bets.
  std::string longer(payload);
  longer += "xyz";
  BetBatchDecoder trailing(longer);
  REQUIRE(trailing.Start());
  REQUIRE(trailing.Next());
  CHECK_FALSE(trailing.Next().has_value());

  CHECK_FALSE(DecodeHello("\x01\x02"));
  CHECK_FALSE(DecodeHello(std::string_view("\x00\x00\x00\x01\x00", 5)));
  CHECK_FALSE(DecodeAck("garbage"));
  CHECK_FALSE(DecodeWelcome(std::string_view("\0\0\0\0\0\0\0\0\x02", 9)));
  std::vector<std::string_view> docs;
  CHECK_FALSE(DecodeWinners(std::string_view("\x01\x00\x02\x00\x08"
                                             "123",
                                             8),
                            docs));
  CHECK_FALSE(DecodeError("\x00"));
}

TEST_CASE("WELCOME decodes only as 34 bytes with finished 0..1 and round_state 1..3") {
  std::string frame;
  EncodeWelcome(frame, Welcome{7, true, 700, 0xfedcba9876543210ULL, 12, kRoundDrawn});
  const std::string payload = frame.substr(kFrameHeaderSize);
  REQUIRE(payload.size() == kWelcomeSize);
  auto w = DecodeWelcome(payload);
  REQUIRE(w);
  CHECK(w->last_seq == 7);
  CHECK(w->finished);
  CHECK(w->bets_stored == 700);
  CHECK(w->stored_digest == 0xfedcba9876543210ULL);
  CHECK(w->round == 12);
  CHECK(w->round_state == kRoundDrawn);
  // The 9-byte WELCOME of earlier versions, and one byte more or less.
  CHECK_FALSE(DecodeWelcome(payload.substr(0, 9)));
  CHECK_FALSE(DecodeWelcome(payload.substr(0, kWelcomeSize - 1)));
  CHECK_FALSE(DecodeWelcome(payload + '\0'));
  for (unsigned char state : {0, 4, 255}) {
    std::string bad = payload;
    bad[kWelcomeSize - 1] = static_cast<char>(state);
    CHECK_FALSE(DecodeWelcome(bad));
  }
  std::string finished_two = payload;
  finished_two[8] = 2;
  CHECK_FALSE(DecodeWelcome(finished_two));
}

TEST_CASE("a BETS batch numbered 0 or holding no bet does not decode") {
  // seq 0, one bet: header 00..00 | 00 01.
  std::string zero_seq(8, '\0');
  zero_seq += std::string("\x00\x01", 2);
  BetBatchDecoder first(zero_seq);
  auto s = first.Start();
  REQUIRE_FALSE(s);
  CHECK(s.error().kind == ErrorKind::kProtocol);
  CHECK(s.error().message.find("seq 0") != std::string::npos);
  // seq 1, count 0.
  std::string empty("\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00", 10);
  BetBatchDecoder none(empty);
  auto e = none.Start();
  REQUIRE_FALSE(e);
  CHECK(e.error().message.find("count 0") != std::string::npos);
  // seq 1 with one bet still does.
  std::string frame;
  BetBatchEncoder encoder(frame, 1);
  REQUIRE(encoder.Add(BetView{0, "Ana", "Paz", "1", "1990-01-01", 5}));
  BetBatchDecoder one(std::string_view(frame).substr(kFrameHeaderSize));
  CHECK(one.Start());
}

TEST_CASE("corrupted and random payloads never make a decoder read out of bounds") {
  std::uint32_t state = 12345;
  auto next = [&state] {
    state = state * 1103515245u + 12345u;
    return state >> 16;
  };
  std::string valid;
  BetBatchEncoder encoder(valid, 9);
  for (int i = 0; i < 5; ++i)
    REQUIRE(encoder.Add(BetView{0, "Ana", "Paz", "123", "1990-01-01", 1}));
  const std::string payload = valid.substr(kFrameHeaderSize);
  int decoded = 0;
  int refused = 0;
  std::vector<std::string_view> docs;
  for (int round = 0; round < 20000; ++round) {
    std::string bytes = payload;
    if (round % 2 == 0) {
      bytes[next() % bytes.size()] = static_cast<char>(next());  // one corrupted byte
    } else {
      bytes.resize(next() % 64);
      for (char& c : bytes) c = static_cast<char>(next());
    }
    (void)DecodeHello(bytes);
    (void)DecodeWelcome(bytes);
    (void)DecodeAck(bytes);
    (void)DecodeFinishedAck(bytes);
    (void)DecodeError(bytes);
    docs.clear();
    (void)DecodeWinners(bytes, docs);
    for (std::string_view d : docs) CHECK(d.data() + d.size() <= bytes.data() + bytes.size());
    BetBatchDecoder d(bytes);
    if (!d.Start()) {
      ++refused;
      continue;
    }
    while (true) {
      auto bet = d.Next();
      if (!bet) {
        ++refused;
        break;
      }
      if (!bet->has_value()) break;
      ++decoded;
      CHECK((*bet)->data() >= bytes.data());
      CHECK((*bet)->data() + (*bet)->size() <= bytes.data() + bytes.size());
    }
  }
  CHECK(decoded > 1000);  // the corrupted frames exercised the bet decoder
  CHECK(refused > 1000);
}

TEST_CASE("long winners lists split into frames within the limit") {
  std::vector<std::string> storage;
  for (int i = 0; i < 3000; ++i) storage.push_back(fmt::format("{:08d}", i));
  std::vector<std::string_view> docs(storage.begin(), storage.end());
  std::string out;
  EncodeWinnersFrames(out, docs);
  std::vector<std::string_view> decoded;
  std::size_t pos = 0;
  int frames = 0;
  bool last = false;
  while (pos < out.size()) {
    auto h = DecodeFrameHeader(std::string_view(out).substr(pos));
    CHECK(h.type == static_cast<std::uint8_t>(MessageType::kWinners));
    CHECK(kFrameHeaderSize + h.length <= kMaxFrameSize);
    CHECK_FALSE(last);  // nothing after the last frame
    auto l = DecodeWinners(std::string_view(out).substr(pos + kFrameHeaderSize, h.length), decoded);
    REQUIRE(l);
    last = *l;
    pos += kFrameHeaderSize + h.length;
    ++frames;
  }
  CHECK(last);
  CHECK(frames > 1);
  REQUIRE(decoded.size() == docs.size());
  for (std::size_t i = 0; i < docs.size(); ++i) CHECK(decoded[i] == docs[i]);

  std::string empty;
  EncodeWinnersFrames(empty, {});
  CHECK(Hex(empty) == "84 00 00 00 03 01 00 00");
}

TEST_CASE("error replies say whether the connection closes") {
  CHECK(ErrorClosesConnection(ErrorCode::kFrameTooLarge));
  CHECK(ErrorClosesConnection(ErrorCode::kUnknownType));
  CHECK(ErrorClosesConnection(ErrorCode::kAgencyBusy));
  CHECK_FALSE(ErrorClosesConnection(ErrorCode::kInvalidBet));
  CHECK_FALSE(ErrorClosesConnection(ErrorCode::kOutOfOrder));
  CHECK(std::string(ErrorCodeName(ErrorCode::kDrawCancelled)) == "DRAW_CANCELLED");
  CHECK_FALSE(IsKnownMessageType(0xde));
  CHECK(IsKnownMessageType(0x02));
}

TEST_CASE("the error table of docs/PROTOCOL.md names every code and its effect") {
  std::string doc = testing::ReadFile(testing::SourceRoot() / "docs" / "PROTOCOL.md");
  std::istringstream in(doc.substr(doc.find("### Errors")));
  std::string line;
  int rows = 0;
  while (std::getline(in, line)) {
    // "| 13 | TOO_MANY_CONNECTIONS | closed: ... |"
    if (line.size() < 3 || line[0] != '|' || !std::isdigit(static_cast<unsigned char>(line[2]))) {
      if (rows > 0 && line.empty()) break;
      continue;
    }
    std::vector<std::string> cells;
    std::istringstream row(line.substr(1));
    std::string cell;
    while (std::getline(row, cell, '|')) {
      auto b = cell.find_first_not_of(' ');
      auto e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
    }
    REQUIRE(cells.size() >= 3);
    auto code = static_cast<ErrorCode>(std::stoi(cells[0]));
    CAPTURE(line);
    CHECK(cells[1] == ErrorCodeName(code));
    CHECK(ErrorClosesConnection(code) == cells[2].starts_with("closed"));
    ++rows;
  }
  CHECK(rows == 18);
  CHECK(std::string(ErrorCodeName(static_cast<ErrorCode>(19))) != "BETTING_CLOSED");
}

}  // namespace
}  // namespace lottery
