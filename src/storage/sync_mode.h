// When the server makes stored bets durable (storage.sync).
#pragma once

namespace lottery {

enum class SyncMode {
  kAlways,  // fdatasync() before a batch is acknowledged (group commit)
  kNever,   // leave it to the kernel: an acknowledged batch can be lost in a crash
};

inline const char* SyncModeName(SyncMode mode) {
  return mode == SyncMode::kAlways ? "always" : "never";
}

}  // namespace lottery
