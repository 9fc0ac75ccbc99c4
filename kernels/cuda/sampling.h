// File: kernels/cuda/sampling.h
// -----------------------------------------------------------------------------
// Sampling on the GPU (issue 7 item 2): one thread block per logits row turns a float32 row
// into the next token, so only the sampled ids (and requested logprobs) come back to the host
// instead of [rows][vocab] floats. The semantics are runtime::Sampler's (vLLM's):
//   1. logprobs (if asked): log-softmax of the RAW row, the sampled token's and the top-N;
//   2. penalties: repetition (prompt ∪ output: l > 0 ? l / rp : l * rp), then
//      presence/frequency over the output counts (l -= freq * count + presence);
//   3. temperature <= 0: argmax (first index on ties);
//      else x = l / T, keep top-k (ties at the k-th value kept), min-p (p >= min_p * p_max),
//      top-p (the smallest set of largest probabilities whose mass under the top-k
//      renormalisation reaches top_p), and draw by inverse CDF over the kept set with the
//      row's uniform number.
// The draw walks the vocabulary in id order (the CPU sampler walks it in probability order):
// both draw from the same distribution, but one uniform number picks different tokens on the
// two devices. top-k / top-p thresholds are found by a radix search over the float keys
// (32 block-wide passes each), not a sort.
//
// CUDA runtime and standard headers only; the launcher enqueues on `stream` and never
// synchronizes. The Status wrapper is SampleRows in model_ops_host.h.
#ifndef KITTY_KERNELS_CUDA_SAMPLING_H_
#define KITTY_KERNELS_CUDA_SAMPLING_H_

#include <cuda_runtime_api.h>

#include <cstdint>

namespace kitty::kernels::cuda {

constexpr int kMaxSampleLogprobs = 20;

// One row to sample (device memory, filled by the host).
struct SampleRowParams {
  int32_t row = 0;           // logits row
  int32_t num_logprobs = 0;  // top-N logprobs to report, 0..kMaxSampleLogprobs
  float temperature = 0.0f;  // <= 0: greedy
  int32_t top_k = 0;         // <= 0: off
  float top_p = 1.0f;        // >= 1: off
  float min_p = 0.0f;        // <= 0: off
  float uniform = 0.0f;      // the row's draw in [0, 1)
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  int32_t penalty_offset = 0;  // into the PenaltyToken list
  int32_t num_penalty = 0;
};

// A token the penalties touch: with repetition_penalty != 1 every distinct token of prompt ∪
// output, else every distinct output token. `raw` is scratch (the kernel saves the unpenalised
// logit there).
struct PenaltyToken {
  int32_t token = 0;
  int32_t output_count = 0;
  float raw = 0.0f;
  int32_t reserved = 0;
};

struct SampleRowResult {
  int32_t token = 0;
  float logprob = 0.0f;  // of `token` under the raw row (0 when num_logprobs == 0)
  int32_t num_top = 0;
  int32_t reserved = 0;
  int32_t top_ids[kMaxSampleLogprobs];
  float top_logprobs[kMaxSampleLogprobs];
};

// logits: [*][vocab] float32, modified in place (penalties). One block per params entry.
cudaError_t LaunchSampleRows(float* logits, int vocab, const SampleRowParams* params, int num_rows,
                             PenaltyToken* penalties, SampleRowResult* out, cudaStream_t stream);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_SAMPLING_H_
