// libFuzzer target: every message decoder of docs/PROTOCOL.md on the same
// payload (the first byte picks nothing; each decoder must refuse or accept
// any bytes without crashing).
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
  if (size >= 5) (void)DecodeFrameHeader(data);
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
