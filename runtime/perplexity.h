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
  // Per document (in input order; documents with < 2 tokens count 0): predicted positions and
  // summed NLL.
  std::vector<int64_t> doc_tokens;
  std::vector<double> doc_sum_nll;
};

// Memory of one cache mode, per token per kv-head per layer, by storage kind (KITTY.md §4),
// computed from the sizes the cache really allocates (KPageBytes / VPageBytes / SinkBlockBytes /
// TailSlotBytes, the sizes models::KvCache uses for its pools).
struct ModeMemory {
  std::string mode;
  int head_dim = 0;          // D
  int boost_channels = 0;    // DB
  int sink_tokens = 0;       // S
  std::string fp_dtype;      // element type of the sink, the tails and `auto` pages
  int64_t k_page_bytes = 0;  // one sealed K page, one layer, all kv heads
  int64_t v_page_bytes = 0;
  // Bytes per token per kv-head.
  double sealed_k = 0;  // K in a sealed page (codes + idx + fp16 scale/min + padding)
  double sealed_v = 0;  // V in a sealed page
  double sink = 0;      // K + V of a sink token
  double k_tail = 0;    // K of a tail token (not yet sealed)
  double v_tail = 0;    // V of a tail token (Q-buffer + window)
  double fp16_kv = 0;   // K + V at fp16: 4*D
  // Sealed pages: bits per element and the ratio fp16 / (sealed_k + sealed_v).
  double k_bits_per_element = 0;
  double v_bits_per_element = 0;
  double bits_per_element = 0;  // K and V together
  double ratio_vs_fp16 = 0;
  // Occupancy over the evaluated documents (0 if none given): mean bytes per token per kv-head
  // at each document's final length, sealed pages + sink + tails, and the ratio to fp16.
  double docs_bytes_per_token = 0;
  double docs_ratio_vs_fp16 = 0;
};

// `fp` is the element type of the full-precision parts (the GPU stores them in the model dtype,
// fp16; the CPU backend in float32). doc_lengths: token counts of the evaluated documents.
ModeMemory ComputeModeMemory(const kernels::KvCacheSpec& spec, kernels::DType fp,
                             const std::vector<int64_t>& doc_lengths = {});

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
