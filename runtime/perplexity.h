// File: runtime/perplexity.h
// -----------------------------------------------------------------------------
// Teacher-forced evaluation of cache modes (kitty-eval). Each document runs with a fresh cache
// and is scored decode-style: the token at position p is fed alone, so it attends to the cache
// exactly as it is after p steps (KITTY.md §1.4: sealed pages quantized, tails full precision).
// Every mode is compared position by position with the first mode given (normally `auto`):
// KL(first || mode) and top-1 agreement.
#ifndef KITTY_RUNTIME_PERPLEXITY_H_
#define KITTY_RUNTIME_PERPLEXITY_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kitty/kv_format.h"
#include "models/model_loader.h"

namespace kitty::runtime {

struct ModeScore {
  std::string mode;
  int64_t tokens = 0;   // predicted positions
  double mean_nll = 0;  // natural log
  double ppl = 0;
  double kl_vs_auto = 0;  // mean over positions of KL(reference || this mode), nats
  double top1_agreement = 0;
};

// Splits `text` on `separator`, strips spaces/newlines at both ends, drops empty documents, and
// keeps at most `max_docs` (<= 0: all).
std::vector<std::string> SplitDocuments(const std::string& text, const std::string& separator,
                                        int max_docs);

// Scores each document (token ids with BOS, already truncated) under each spec; specs[0] is the
// reference for KL and agreement. `progress` (may be empty) is called after each document.
absl::StatusOr<std::vector<ModeScore>> EvaluateModes(
    const models::LoadedModel& m, const std::vector<kernels::KvCacheSpec>& specs,
    const std::vector<std::vector<int32_t>>& docs,
    const std::function<void(int done, int total)>& progress);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_PERPLEXITY_H_
