#include "common/status.h"

#include <cstring>

namespace lottery {

std::unexpected<Error> FailErrno(const std::string& what, int err) {
  return std::unexpected<Error>(Error{ErrorKind::kIo, what + ": " + std::strerror(err), err});
}

const char* ErrorKindName(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kIo: return "io";
    case ErrorKind::kCorruptData: return "corrupt_data";
    case ErrorKind::kInvalidInput: return "invalid_input";
    case ErrorKind::kProtocol: return "protocol";
    case ErrorKind::kConfig: return "config";
    case ErrorKind::kBusy: return "busy";
    case ErrorKind::kInternal: return "internal";
  }
  return "internal";
}

}  // namespace lottery
