// lottery-row-bench: what checking a bet row costs (docs/PERFORMANCE.md).
//
// Reads a dataset file into memory, takes each line as a bet row, and times
// ParseBetRow (with the kernel it picks on this CPU), each of the
// shortcut's kernels this CPU runs, and CheckBetRow (the field-by-field
// reference, without the shortcut) over all of them; prints the best of
// 25 passes of each (the best, so that a busy neighbour on a shared machine
// shows less), in ns per row, as one JSON line (a kernel the CPU
// lacks is null):
//   {"rows": N, "valid": V, "parse_ns": P, "sse2_ns": S, "avx512_ns": A,
//    "reference_ns": R}
// Exits 70 when any two disagree on how many rows are valid.
//
// Usage: lottery-row-bench DATASET
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "wire/bet_row.h"
#include "wire/row_kernels.h"

namespace {

template <typename Check>
double BestNsPerRow(const std::vector<std::string_view>& rows, Check check, std::size_t& valid) {
  double best = 1e18;
  for (int pass = 0; pass < 25; ++pass) {
    const auto start = std::chrono::steady_clock::now();
    valid = 0;
    for (std::string_view row : rows) valid += check(row) ? 1 : 0;
    const std::chrono::duration<double, std::nano> took = std::chrono::steady_clock::now() - start;
    best = std::min(best, took.count() / static_cast<double>(rows.size()));
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: lottery-row-bench DATASET\n");
    return 64;
  }
  std::ifstream in(argv[1], std::ios::binary);
  if (!in) {
    std::fprintf(stderr, "lottery-row-bench: cannot read %s\n", argv[1]);
    return 66;
  }
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string_view> rows;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::size_t stop = end;
    if (stop > pos && text[stop - 1] == '\r') --stop;
    rows.emplace_back(text.data() + pos, stop - pos);
    pos = end + 1;
  }
  if (rows.empty()) return 65;
  const lottery::Date today = lottery::Today();
  lottery::BetView bet;
  std::string scratch;
  std::size_t valid = 0;
  std::size_t valid_reference = 0;
  const double parse = BestNsPerRow(
      rows, [&](std::string_view row) { return !lottery::ParseBetRow(row, today, bet, scratch); },
      valid);
  bool agree = true;
  auto kernel_ns = [&](lottery::RowKernel kernel) -> std::string {
    if (!lottery::HasRowKernel(kernel)) return "null";
    std::size_t kernel_valid = 0;
    const double ns = BestNsPerRow(
        rows,
        [&](std::string_view row) {
          return !lottery::ParseBetRowWith(kernel, row, today, bet, scratch);
        },
        kernel_valid);
    agree = agree && kernel_valid == valid;
    char text[32];
    std::snprintf(text, sizeof text, "%.1f", ns);
    return text;
  };
  const std::string sse2 = kernel_ns(lottery::RowKernel::kSse2);
  const std::string avx512 = kernel_ns(lottery::RowKernel::kAvx512);
  const double reference = BestNsPerRow(
      rows, [&](std::string_view row) { return !lottery::CheckBetRow(row, today, bet, scratch); },
      valid_reference);
  std::printf(
      "{\"rows\": %zu, \"valid\": %zu, \"parse_ns\": %.1f, \"sse2_ns\": %s, \"avx512_ns\": %s, "
      "\"reference_ns\": %.1f}\n",
      rows.size(), valid, parse, sse2.c_str(), avx512.c_str(), reference);
  return agree && valid == valid_reference ? 0 : 70;
}
