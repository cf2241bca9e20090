#include "common/crash_point.h"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

namespace lottery {

void CrashPointHit(const char* name) {
  static const char* armed = std::getenv("LOTTERY_CRASH_AT");
  if (armed == nullptr) return;
  const char* colon = std::strrchr(armed, ':');
  std::size_t length = colon ? static_cast<std::size_t>(colon - armed) : std::strlen(armed);
  if (std::strlen(name) != length || std::strncmp(armed, name, length) != 0) return;
  static long hits = 0;
  const long wanted = colon ? std::atol(colon + 1) : 1;
  if (++hits < wanted) return;
  static const char message[] = "crash point reached: killing the process group\n";
  (void)!::write(STDERR_FILENO, message, sizeof message - 1);
  ::kill(0, SIGKILL);
  ::_exit(137);
}

}  // namespace lottery
