// Where a new agency process resumes: after the bets the server already
// holds of it, counted in bets, not batches, since an earlier process may
// have cut the dataset into other batches. The first WELCOME's bets_stored
// valid lines of the dataset (the rows the agency would send: lines it skips
// as invalid do not count) must be the bets the server holds, which the
// stored digest (wire/row_digest.h) tells; otherwise the dataset is not the
// one those bets came from and the agency sends nothing.
#pragma once

#include <cstdint>
#include <string>

#include "agency/dataset_reader.h"
#include "wire/protocol.h"
#include "wire/row_digest.h"

namespace lottery {

enum class StoredMatch {
  kMatch,      // the first bets_stored rows are the stored bets
  kTooFew,     // the dataset has fewer valid rows than the server holds
  kDiffers,    // their digest is not the server's
  kReadError,  // reading the dataset failed (rows.error())
};

// Reads the first `bets_stored` rows of `rows` and compares their digest
// with `stored_digest`. `seen` gets what was read (how many rows, their
// digest); `rows` is left at the row after them.
StoredMatch SkipStoredBets(DatasetRows& rows, std::uint64_t bets_stored,
                           std::uint64_t stored_digest, StoredRows& seen);

// SkipStoredBets for agency `id` reading `path`, after its first WELCOME,
// with its log lines: kExitOk to go on sending the rest, else the exit code
// (65 when the dataset does not match what the server holds, 66 when it
// cannot be read).
int ResumeAfterStored(DatasetRows& rows, const Welcome& welcome, std::uint32_t id,
                      const std::string& path);

}  // namespace lottery
