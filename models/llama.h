// File: models/llama.h
// -----------------------------------------------------------------------------
// The Llama-family decoder (Llama 2/3, Qwen2, Qwen3, Mistral) on the CPU backend: one
// implementation with switches (qkv bias, q/k RMSNorm, llama3 RoPE scaling, tied embeddings),
// float32 compute, OpenBLAS GEMMs and OpenMP loops.
//
// A forward step takes a batch of sequences, each contributing `n` new tokens that start at
// its cached length (a prefill chunk, or 1 token for decode). Per layer, each sequence attends
// over its cached KV (sink + sealed pages + tails, through kernels::AttendCpu) plus its new
// tokens in full precision, then appends the new K/V (kernels::AppendKv), sealing pages as
// KITTY.md §1.3/§1.4 prescribe. K is stored post-RoPE (and post q/k-norm).
//
// Thread safety: a LlamaModel is immutable after construction; Forward() may run on one thread
// at a time per KvCache.
#ifndef KITTY_MODELS_LLAMA_H_
#define KITTY_MODELS_LLAMA_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "models/config.h"
#include "models/kv_cache.h"
#include "models/safetensors.h"

namespace kitty::models {

// One layer's weights, float32, PyTorch Linear layout [out][in].
struct LlamaLayerWeights {
  std::vector<float> attn_norm;       // [H]
  std::vector<float> wq, wk, wv;      // [Hq*D][H], [Hkv*D][H], [Hkv*D][H]
  std::vector<float> bq, bk, bv;      // [Hq*D], [Hkv*D], [Hkv*D] (attention_bias only)
  std::vector<float> q_norm, k_norm;  // [D] (qk_norm only)
  std::vector<float> wo;              // [H][Hq*D]
  std::vector<float> ffn_norm;        // [H]
  std::vector<float> w_gate, w_up;    // [I][H]
  std::vector<float> w_down;          // [H][I]
};

struct LlamaWeights {
  std::vector<float> embed;  // [V][H]
  std::vector<LlamaLayerWeights> layers;
  std::vector<float> final_norm;  // [H]
  std::vector<float> lm_head;     // [V][H]; empty when tied (the embedding is used)
};

// One sequence's part of a forward step.
struct SequenceStep {
  absl::Span<const int32_t> token_ids;  // the n new tokens
  SequenceKvSlots* kv = nullptr;        // pool slots; counters = state before the step
  bool all_logits = false;              // logits for every new token (else only the last)
};

class LlamaModel {
 public:
  // Reads weights from an opened safetensors model; shapes are checked against `config`.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Load(const ModelConfig& config,
                                                          const SafetensorsModel& weights);
  // Random weights (builtin and synthetic models): linear N(0,1/in)-like, norms near 1.
  static absl::StatusOr<std::unique_ptr<LlamaModel>> Random(const ModelConfig& config,
                                                            uint64_t seed);

  LlamaModel(const LlamaModel&) = delete;
  LlamaModel& operator=(const LlamaModel&) = delete;

  const ModelConfig& config() const { return config_; }
  int64_t num_parameters() const;

  // Runs one step. `logits` receives [rows][vocab] in batch order: n rows for a sequence with
  // all_logits, else 1 row (its last token). The KV counters in each `kv` are NOT advanced:
  // the caller (block manager / SingleSequenceKv) owns them; `counters_after`, when non-null,
  // receives what the kernels computed for each sequence.
  // REQUIRES: each kv has the pages that seal during this step already allocated.
  absl::Status Forward(absl::Span<const SequenceStep> batch, KvCache& cache,
                       std::vector<float>* logits,
                       std::vector<kernels::SeqKvCounters>* counters_after = nullptr) const;

 private:
  LlamaModel(const ModelConfig& config, std::vector<float> inv_freq)
      : config_(config), inv_freq_(std::move(inv_freq)) {}

  ModelConfig config_;
  std::vector<float> inv_freq_;  // [D/2] RoPE inverse frequencies (llama3 scaling applied)
  LlamaWeights w_;
};

// RoPE inverse frequencies as HF computes them (float32), with llama3 scaling when configured.
std::vector<float> RopeInverseFrequencies(const ModelConfig& config);

}  // namespace kitty::models

#endif  // KITTY_MODELS_LLAMA_H_
