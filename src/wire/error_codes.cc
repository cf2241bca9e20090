#include "wire/error_codes.h"

#include <array>

namespace lottery {
namespace {

using R = AgencyReaction;
using E = ErrorCode;

constexpr std::array<ErrorCodeInfo, 18> kTable{{
    {E::kMalformed, "MALFORMED", true, "protocol", R::kFatal, ""},
    {E::kFrameTooLarge, "FRAME_TOO_LARGE", true, "protocol", R::kFatal, ""},
    {E::kUnknownType, "UNKNOWN_TYPE", true, "protocol", R::kFatal, ""},
    {E::kOutOfOrder, "OUT_OF_ORDER", false, "protocol", R::kFatal, ""},
    {E::kBadAgency, "BAD_AGENCY", true, "bad_agency", R::kUnknownId,
     "the server does not serve this agency id; check agency.id and the server's "
     "server.agencies"},
    {E::kAgencyBusy, "AGENCY_BUSY", true, "agency_busy", R::kRetry, ""},
    {E::kInvalidBet, "INVALID_BET", false, "protocol", R::kRejected, ""},
    {E::kSequenceGap, "SEQUENCE_GAP", false, "protocol", R::kFatal, ""},
    {E::kDrawCancelled, "DRAW_CANCELLED", true, "protocol", R::kRetry, ""},
    {E::kStorageFailed, "STORAGE_FAILED", false, "", R::kRetry, ""},
    {E::kTimeout, "TIMEOUT", true, "hello_timeout", R::kRetry, ""},
    {E::kShuttingDown, "SHUTTING_DOWN", true, "", R::kRetry, ""},
    {E::kTooManyConnections, "TOO_MANY_CONNECTIONS", true, "protocol", R::kRetry, ""},
    {E::kTlsRequired, "TLS_REQUIRED", true, "tls_required", R::kMisconfigured,
     "this agency runs with tls.mode = off"},
    {E::kNotAuthorized, "NOT_AUTHORIZED", true, "not_authorized", R::kRefused,
     "the server does not accept this agency's certificate for agency {0}"},
    {E::kReplaced, "REPLACED", true, "", R::kIdTaken,
     "another connection with this agency's certificate took over agency {0}; is a second "
     "agency process running with the same id?"},
    {E::kReplayMismatch, "REPLAY_MISMATCH", true, "protocol", R::kMismatch,
     "the server stored a batch with this number and other bets: the dataset changed since it "
     "was first sent this round"},
    {E::kBettingClosed, "BETTING_CLOSED", true, "betting_closed", R::kClosed,
     "betting closed before this agency said FINISHED; its bets take no part in the draw"},
}};

constexpr ErrorCodeInfo kUnknown{E{0}, "UNKNOWN_ERROR", true, "protocol", R::kFatal, ""};

}  // namespace

std::span<const ErrorCodeInfo> ErrorCodeTable() { return kTable; }

const ErrorCodeInfo& InfoFor(ErrorCode code) {
  for (const ErrorCodeInfo& info : kTable) {
    if (info.code == code) return info;
  }
  return kUnknown;
}

}  // namespace lottery
