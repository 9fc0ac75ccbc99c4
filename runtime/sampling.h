// File: runtime/sampling.h
// -----------------------------------------------------------------------------
// Per-request sampling parameters (vLLM's names and defaults) and the CPU sampler that turns a
// logits row into the next token. Seeded requests draw from their own generator, so the same
// seed gives the same output whatever else shares the batch.
#ifndef KITTY_RUNTIME_SAMPLING_H_
#define KITTY_RUNTIME_SAMPLING_H_

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "models/model_runner.h"

namespace kitty::runtime {

// Temperatures below this sample greedily (vLLM's _SAMPLING_EPS): 1 / T of a tinier one
// overflows the scaled logits to inf and the softmax to NaN.
inline constexpr float kGreedyTemperature = 1e-5f;
// Bounds on a request's stop conditions, so that one request cannot make every token of every
// sequence scan megabytes (each of the n outputs holds a copy of the parameters).
inline constexpr size_t kMaxStopStrings = 64;
inline constexpr size_t kMaxStopStringBytes = 1024;
inline constexpr size_t kMaxStopTokenIds = 1024;

struct SamplingParams {
  int32_t max_tokens = 16;
  int32_t min_tokens = 0;
  float temperature = 1.0f;  // < kGreedyTemperature (0) = greedy
  float top_p = 1.0f;
  int32_t top_k = 0;  // 0 or -1 = off
  float min_p = 0.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float repetition_penalty = 1.0f;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  std::vector<int32_t> stop_token_ids;
  bool ignore_eos = false;
  int32_t n = 1;
  int32_t logprobs = 0;  // top-N logprobs per generated token (0 = none)
};

// Checks ranges; the message names the field (e.g. "sampling_params.top_p must be in (0, 1]").
absl::Status ValidateSamplingParams(const SamplingParams& p, int32_t vocab_size);

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob;
};

struct SampleResult {
  int32_t token_id = 0;
  float logprob = 0.0f;           // of the sampled token under the unmodified distribution
  std::vector<TokenLogprob> top;  // top-N alternatives (N = params.logprobs)
};

// Stateful per-sequence sampler: owns the seeded generator and the output-token counts used by
// the penalties.
class Sampler {
 public:
  Sampler(const SamplingParams& params, uint64_t fallback_seed);
  // `prompt` and `output` are the sequence's token ids so far (for repetition penalties).
  SampleResult Sample(absl::Span<const float> logits, absl::Span<const int32_t> prompt,
                      absl::Span<const int32_t> output);
  // The same step sampled on the device (models::RowSampling, kDevice): draws this step's
  // uniform number from the generator as Sample would, and lists the penalty tokens.
  models::RowSampling DeviceRow(absl::Span<const int32_t> prompt, absl::Span<const int32_t> output);
  static SampleResult FromDevice(const models::RowSample& s);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_SAMPLING_H_
