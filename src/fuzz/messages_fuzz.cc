// libFuzzer target: every message decoder of docs/PROTOCOL.md on the same
// payload (the first byte picks nothing; each decoder must refuse or accept
// any bytes without crashing), and the agency's one-pass check of a dataset
// line held to the reference.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "wire/bet.h"
#include "wire/bet_row.h"
#include "wire/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  std::string_view payload(reinterpret_cast<const char*>(data), size);
  (void)DecodeHello(payload);
  (void)DecodeWelcome(payload);
  (void)DecodeAck(payload);
  (void)DecodeFinishedAck(payload);
  (void)DecodeError(payload);
  std::vector<std::string_view> documents;
  (void)DecodeWinners(payload, documents);
  if (size >= kFrameHeaderSize) (void)DecodeFrameHeader(payload);
  {
    // The agency's one pass over a dataset line: what it takes must be a
    // line whose row the reference accepts, to the same bet.
    const Date today{2026, 11, 23};
    BetView fast;
    std::size_t line_size = 0;
    if (const std::size_t row_size = ParseCommonLine(payload, today, fast, line_size)) {
      if (line_size > payload.size() || payload[line_size - 1] != '\n') __builtin_trap();
      if (row_size + 1 != line_size && !(row_size + 2 == line_size && payload[row_size] == '\r')) {
        __builtin_trap();
      }
      BetView reference;
      std::string scratch;
      if (CheckBetRow(payload.substr(0, row_size), today, reference, scratch)) __builtin_trap();
      if (fast.document != reference.document || fast.number != reference.number ||
          fast.birthdate != reference.birthdate || fast.first_name != reference.first_name ||
          fast.last_name != reference.last_name) {
        __builtin_trap();
      }
    }
  }
  BetBatchDecoder decoder(payload);
  if (decoder.Start()) {
    const Date today{2026, 11, 23};
    std::string scratch;
    std::string again;
    while (true) {
      auto next = decoder.Next();
      if (!next || !next->has_value()) break;
      const std::string_view row = **next;
      BetView bet;
      if (ParseBetRow(row, today, bet, scratch)) continue;
      // What the server stores as it came must be a valid bet spelled the
      // one way the server itself would write it.
      if (ValidateBet(bet, today)) __builtin_trap();
      again.clear();
      AppendBetRowText(again, bet);
      if (again != row) __builtin_trap();
    }
  }
  return 0;
}
