#include "common/status.h"

#include <cstring>

namespace lottery {

std::unexpected<Error> FailErrno(const std::string& what, int err) {
  return std::unexpected<Error>(Error{ErrorKind::kIo, what + ": " + std::strerror(err), err});
}

}  // namespace lottery
