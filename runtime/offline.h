// File: runtime/offline.h
// -----------------------------------------------------------------------------
// Single-sequence generation without the engine: prefill the prompt in one forward step, then
// decode one token per step, in any cache mode. Used by kitty-run for one prompt, by
// kitty-eval, and by tests as the "alone" reference that batched runs must reproduce.
#ifndef KITTY_RUNTIME_OFFLINE_H_
#define KITTY_RUNTIME_OFFLINE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kitty/kv_format.h"
#include "models/model_loader.h"
#include "runtime/sampling.h"

namespace kitty::runtime {

struct GenerationResult {
  std::vector<int32_t> prompt_token_ids;
  std::vector<int32_t> token_ids;  // generated
  std::string text;                // decoded generated tokens (empty without a tokenizer)
  std::string finish_reason;       // "length" | "stop"
};

// Cache geometry from flags: mode name, sink override (<0 default), boost fraction (<0 default).
absl::StatusOr<kernels::KvCacheSpec> MakeSpecForModel(const models::ModelConfig& config,
                                                      const std::string& mode,
                                                      int sink_tokens_override,
                                                      double boost_fraction_override);

// The ids a request's stop logic treats as end of sequence (config eos ids + tokenizer eos).
std::vector<int32_t> EosTokenIds(const models::LoadedModel& m);

absl::StatusOr<GenerationResult> GenerateOffline(const models::LoadedModel& m,
                                                 const kernels::KvCacheSpec& spec,
                                                 std::vector<int32_t> prompt_ids,
                                                 const SamplingParams& params);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_OFFLINE_H_
