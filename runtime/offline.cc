#include "runtime/offline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "models/kv_cache.h"

namespace kitty::runtime {

absl::StatusOr<kernels::KvCacheSpec> MakeSpecForModel(const models::ModelConfig& config,
                                                      const std::string& mode,
                                                      int sink_tokens_override,
                                                      double boost_fraction_override) {
  absl::StatusOr<kernels::KvCacheMode> m = kernels::ParseKvCacheMode(mode);
  if (!m.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--kv-cache-dtype: ", m.status().message()));
  }
  return kernels::MakeKvCacheSpec(*m, config.head_dim, config.num_kv_heads, sink_tokens_override,
                                  boost_fraction_override);
}

std::vector<int32_t> EosTokenIds(const models::LoadedModel& m) {
  std::vector<int32_t> ids(m.config.eos_token_ids.begin(), m.config.eos_token_ids.end());
  if (m.tokenizer != nullptr) {
    if (auto eos = m.tokenizer->eos_token_id(); eos.has_value()) ids.push_back(*eos);
  }
  return ids;
}

absl::StatusOr<GenerationResult> GenerateOffline(const models::LoadedModel& m,
                                                 const kernels::KvCacheSpec& spec,
                                                 std::vector<int32_t> prompt_ids,
                                                 const SamplingParams& params) {
  RETURN_IF_ERROR(ValidateSamplingParams(params, m.config.vocab_size));
  const int ctx = m.config.max_position_embeddings;
  if (prompt_ids.empty()) {
    return absl::InvalidArgumentError("the prompt is empty (give text or token ids)");
  }
  for (int32_t id : prompt_ids) {
    if (id < 0 || id >= m.config.vocab_size) {
      return absl::InvalidArgumentError(absl::StrFormat(
          "prompt token id %d is out of range for a vocabulary of %d", id, m.config.vocab_size));
    }
  }
  if (static_cast<int>(prompt_ids.size()) >= ctx) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "the prompt has %d tokens; the model context is %d", prompt_ids.size(), ctx));
  }
  const int max_total = std::min<int>(ctx, prompt_ids.size() + params.max_tokens);
  models::SingleSequenceKv kv(spec, m.config.num_layers, max_total);
  Sampler sampler(params, /*fallback_seed=*/0);
  const std::vector<int32_t> eos = EosTokenIds(m);

  GenerationResult r;
  r.prompt_token_ids = prompt_ids;
  r.finish_reason = "length";
  std::vector<int32_t> step_tokens = prompt_ids;
  std::vector<float> logits;
  while (static_cast<int>(r.token_ids.size()) < params.max_tokens) {
    if (kv.num_tokens() + static_cast<int>(step_tokens.size()) > ctx) break;
    kv.Reserve(static_cast<int32_t>(step_tokens.size()));
    models::SequenceStep step{step_tokens, &kv.slots(), false};
    RETURN_IF_ERROR(m.model->Forward({&step, 1}, kv.cache(), &logits));
    kv.Advance(static_cast<int32_t>(step_tokens.size()));
    const SampleResult s = sampler.Sample(logits, r.prompt_token_ids, r.token_ids);
    r.token_ids.push_back(s.token_id);
    const bool is_stop_id = std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(),
                                      s.token_id) != params.stop_token_ids.end();
    const bool is_eos =
        !params.ignore_eos && std::find(eos.begin(), eos.end(), s.token_id) != eos.end();
    if ((is_stop_id || is_eos) && static_cast<int>(r.token_ids.size()) > params.min_tokens) {
      r.finish_reason = "stop";
      break;
    }
    step_tokens = {s.token_id};
  }
  if (m.tokenizer != nullptr) r.text = m.tokenizer->Decode(r.token_ids, /*skip_special=*/true);
  return r;
}

}  // namespace kitty::runtime
