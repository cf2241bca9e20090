// Everything both programs decide about an ERROR code, in one table: its
// name on the wire's documentation, whether the server closes the
// connection after sending it, the refusal metric it counts when sent
// before a valid HELLO, and what the agency does when it receives it.
// docs/PROTOCOL.md's Errors table is held to this one by error_codes_test.cc.
#pragma once

#include <span>
#include <string_view>

#include "wire/protocol.h"

namespace lottery {

// What an agency does with an ERROR reply, whenever it comes (in reply to
// HELLO or later): the agency maps each to its step and exit code.
enum class AgencyReaction {
  kRetry,          // transient on the server's side: reconnect and redo
  kRejected,       // the bets were refused (exit 65 once the dataset is sent)
  kMismatch,       // the dataset changed since a batch was stored (exit 65)
  kUnknownId,      // the server does not serve this agency id (exit 67)
  kIdTaken,        // another process holds this agency's certificate (exit 75)
  kClosed,         // betting closed before this agency said FINISHED (exit 77)
  kRefused,        // the server refuses this agency's certificate (exit 77)
  kMisconfigured,  // the server requires TLS and the agency runs without (exit 78)
  kFatal,          // a protocol error that retrying cannot fix (exit 76)
};

struct ErrorCodeInfo {
  ErrorCode code;
  std::string_view name;     // as on the wire's documentation, e.g. "TIMEOUT"
  bool closes;               // the server closes the connection after sending it
  std::string_view refusal;  // lottery_connections_refused_total's reason before
                             // a valid HELLO; empty: not counted as a refusal
  AgencyReaction agency;
  std::string_view agency_hint;  // what the agency adds to its log; may be empty
};

// Every known code, in code order.
std::span<const ErrorCodeInfo> ErrorCodeTable();
// The row of `code`; an unknown code gets a row named UNKNOWN_ERROR that
// closes, counts as "protocol" and is fatal to the agency.
const ErrorCodeInfo& InfoFor(ErrorCode code);

}  // namespace lottery
