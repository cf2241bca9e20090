// The kernels of ParseBetRow's shortcut (wire/bet_row.h), one by one: for
// the tests and the row benchmark, which compare them. Production code
// calls ParseBetRow and ParseCommonLine, which take the widest kernel this
// CPU runs.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "wire/bet.h"

namespace lottery {

// The shortcut's kernels: none (CheckBetRow alone), SSE2 (four 16-byte
// compares per class of byte, any x86-64), AVX-512BW (one 64-byte load,
// masked only in the last 64 bytes of a page, each class one compare;
// chosen when the CPU has it).
enum class RowKernel { kNone, kSse2, kAvx512 };

// Whether this build and this CPU run `kernel`.
bool HasRowKernel(RowKernel kernel);

// ParseBetRow with a given kernel (HasRowKernel(kernel) must hold; asserted).
std::optional<std::string> ParseBetRowWith(RowKernel kernel, std::string_view row,
                                           const Date& today, BetView& bet, std::string& scratch);

// ParseCommonLine with a given kernel (HasRowKernel(kernel) must hold; asserted).
std::size_t ParseCommonLineWith(RowKernel kernel, std::string_view text, const Date& today,
                                BetView& bet, std::size_t& line_size);

}  // namespace lottery
