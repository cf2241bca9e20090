// The bet row: how a bet travels inside a BETS frame (docs/PROTOCOL.md). It
// is the bets file's row (docs/STORAGE.md) without its agency column and line
// end, `first_name,last_name,document,birthdate,number`, in the project's CSV
// dialect (common/csv.h) and in its one canonical spelling: a name is quoted
// only when it holds ',' or '"', the number has no leading zero. So the
// server checks a row where it lies in the frame and stores those bytes
// behind the agency column, with no decoding and no re-encoding, and any
// bet has exactly one row.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "wire/bet.h"

namespace lottery {

// The exact size of the row of `bet`.
std::size_t BetRowSize(const BetView& bet);

// Writes the row of `bet` at `p` (room for BetRowSize(bet) bytes) and returns
// its end. The bet should be valid (ValidateBet); the row spells whatever
// the fields hold.
char* PutBetRow(char* p, const BetView& bet);

// Appends the row of `bet` to `out`.
void AppendBetRowText(std::string& out, const BetView& bet);

// Checks that `row` is the canonical row of a valid bet (ValidateBet's rules
// against `today`) and fills `bet` with its fields (agency untouched). The
// views point into `row`, except a quoted name, which is unquoted into
// `scratch`: both must outlive `bet`. Returns std::nullopt when valid, else
// the reason naming the field, in ValidateBet's words where the rule is one
// of its own ("birthdate: in the future"); "row: ..." when the row does not
// have five fields, a field name when one is not spelled canonically.
// Common rows (short, plain names) take a shortcut that classifies the row's
// bytes with vector compares, with the widest kernel the CPU has (RowKernel, wire/row_kernels.h);
// CheckBetRow is the reference every kernel must agree with.
// Inline: agencies and workers call it for every bet, and the valid row's
// answer then costs no std::optional<std::string> built and tested.
inline std::optional<std::string> ParseBetRow(std::string_view row, const Date& today, BetView& bet,
                                              std::string& scratch);

// ParseBetRow without the shortcut: field by field, every row; what
// ParseBetRow falls back to for a row its shortcut does not take. The tests
// hold the two to the same answers.
std::optional<std::string> CheckBetRow(std::string_view row, const Date& today, BetView& bet,
                                       std::string& scratch);

// The agency's fast path through a dataset: the line at the start of `text`
// when its row is a common one that ParseBetRow's shortcut accepts. Returns
// the row's size (the line without its LF or CRLF), fills `bet` like
// ParseBetRow and sets `line_size` to the line's (the row and its line end).
// Returns 0 when the line does not end within `text`'s first 64 bytes or
// the shortcut does not take its row: the caller then reads the line the
// slow way (ParseBetRow, or the CSV reader), which decides. With AVX-512 one
// load finds the line end and classifies the row's bytes.
inline std::size_t ParseCommonLine(std::string_view text, const Date& today, BetView& bet,
                                   std::size_t& line_size);

namespace detail {
// The shortcut with the widest kernel this CPU runs: true when it accepts
// the row (and has filled `bet`), false when CheckBetRow must decide. Set
// before main() starts (bet_row.cc), so before any fork or thread.
using CommonRowParser = bool (*)(std::string_view row, const Date& today, BetView& bet);
extern const CommonRowParser kBestCommonRowParser;
using CommonLineParser = std::size_t (*)(std::string_view text, const Date& today, BetView& bet,
                                         std::size_t& line_size);
extern const CommonLineParser kBestCommonLineParser;
}  // namespace detail

inline std::optional<std::string> ParseBetRow(std::string_view row, const Date& today, BetView& bet,
                                              std::string& scratch) {
  if (detail::kBestCommonRowParser(row, today, bet)) return std::nullopt;
  return CheckBetRow(row, today, bet, scratch);
}

inline std::size_t ParseCommonLine(std::string_view text, const Date& today, BetView& bet,
                                   std::size_t& line_size) {
  return detail::kBestCommonLineParser(text, today, bet, line_size);
}

}  // namespace lottery
