// The domain: one bet, its validation rules and the draw rule.
//
// BetView does not own its text: the strings point into a buffer (a frame
// payload, a CSV record) that must outlive the view. That keeps the hot paths
// free of per-bet allocation.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lottery {

inline constexpr std::size_t kMaxNameChars = 100;  // code points
inline constexpr std::size_t kMaxDocumentDigits = 10;
inline constexpr int kMaxBetNumber = 9999;
inline constexpr int kMinBirthYear = 1900;
inline constexpr std::uint16_t kDefaultWinningNumber = 7574;

struct BetView {
  std::uint32_t agency = 0;     // 1..N, set by the server from the connection
  std::string_view first_name;  // UTF-8, 1..100 code points (see ValidateName)
  std::string_view last_name;   // same rules as first_name
  std::string_view document;    // 1..10 ASCII digits, leading zeros kept
  std::string_view birthdate;   // YYYY-MM-DD, real date, 1900-01-01..today
  std::uint32_t number = 0;     // 0..9999
};

// A calendar date; used for "today" so tests can pin it.
struct Date {
  int year = 0;
  int month = 0;
  int day = 0;
  friend auto operator<=>(const Date&, const Date&) = default;
};

// Today's date in the local time zone.
Date Today();

// Parses exactly "YYYY-MM-DD" into a real calendar date (leap years honoured).
std::optional<Date> ParseDate(std::string_view text);

// A document number as bets hold it: 1..10 ASCII digits, leading zeros kept.
bool IsDocument(std::string_view text);

// Checks every rule of a valid bet except the agency id (the caller knows N).
// Returns std::nullopt when valid, else a short reason naming the field, for
// example "birthdate: not a calendar date".
std::optional<std::string> ValidateBet(const BetView& bet, const Date& today);

// Checks a name field: valid UTF-8, 1..100 code points, no C0/C1 control
// characters and no DEL, no Unicode format character (category Cf, such as
// U+200B or U+202E) nor U+2028/U+2029, and not starting with = + - @ (a
// spreadsheet formula). Returns the reason on failure.
std::optional<std::string> ValidateName(std::string_view name);

// ValidateName for an unquoted name field of a bet row (wire/bet_row.h): the
// name runs from the start of `text` to its first ',' or to the end of
// `text`, and a '"' in it is refused (a field holding one is quoted). Sets
// `size` to the name's bytes when it is valid. One pass finds the field's end
// and checks it.
std::optional<std::string> ValidateUnquotedNameField(std::string_view text, std::size_t& size);

// A bet number as text in files and variables: 1..4 ASCII digits, value
// 0..9999. std::nullopt otherwise.
std::optional<std::uint32_t> ParseBetNumber(std::string_view text);

// draw.winning_number = "random": the number is drawn when the draw runs.
inline constexpr std::uint32_t kRandomWinningNumber = 0xFFFFFFFF;

// A winning number for the draw, uniform over 0..9999, from the kernel's
// random source (getrandom()).
std::uint32_t DrawWinningNumber();

// The draw rule (the exercise's has_won).
inline bool HasWon(const BetView& bet, std::uint32_t winning_number) {
  return bet.number == winning_number;
}

}  // namespace lottery
