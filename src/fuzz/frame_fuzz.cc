// libFuzzer target: the server's frame decoder (FrameReader) reading the
// input as a byte stream, then each frame's payload through the decoder of
// its type, as a worker would.
#include <sys/socket.h>

#include <cstddef>
#include <cstdint>

#include "fuzz/fuzz_util.h"
#include "wire/frame_io.h"
#include "wire/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace lottery;
  fuzz::BufferStream stream(data, size);
  FrameReader reader(stream, -1);
  for (int frames = 0; frames < 1000; ++frames) {
    Frame frame;
    if (reader.Read(frame, Millis(0), Millis(0)) != IoStatus::kOk) break;
    switch (static_cast<MessageType>(frame.type)) {
      case MessageType::kHello: (void)DecodeHello(frame.payload); break;
      case MessageType::kBets: {
        BetBatchDecoder decoder(frame.payload);
        if (!decoder.Start()) break;
        while (true) {
          auto next = decoder.Next();
          if (!next || !next->has_value()) break;
        }
        break;
      }
      default: break;
    }
  }
  return 0;
}
