// File: models/model_runner.h
// -----------------------------------------------------------------------------
// The seam between the engine and a device: a ModelRunner owns the model's weights on its
// device and the KV cache memory (pools sized by the block manager's budget), and runs forward
// steps over block-manager page tables. The CPU runner wraps LlamaModel + KvCache (float32);
// the CUDA runner (kernels/cuda) keeps weights in bf16/fp16 and the pools in device memory.
//
// Thread safety: none; owned and driven by the engine thread.
#ifndef KITTY_MODELS_MODEL_RUNNER_H_
#define KITTY_MODELS_MODEL_RUNNER_H_

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/kitty/kv_format.h"
#include "models/llama.h"
#include "models/model_loader.h"

namespace kitty::models {

// Pool sizes for AllocateKv (counts of units; a unit spans all layers).
struct KvPoolSizes {
  int32_t num_k_pages = 0, num_v_pages = 0, num_sink_blocks = 0, num_tail_slots = 0;
};

// What to do with one output row of a step on a runner that samples on its device.
struct RowSampling {
  enum class Where { kSkip, kDevice, kHost };
  Where where = Where::kHost;  // kSkip: no token wanted; kHost: return the logits row
  float temperature = 0.0f;    // <= 0: greedy
  int32_t top_k = 0;           // <= 0: off
  float top_p = 1.0f;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  float uniform = 0.0f;  // the sequence generator's draw in [0, 1)
  int32_t num_logprobs = 0;
  // (token, count in the output): every distinct token of prompt ∪ output when
  // repetition_penalty != 1, else every distinct output token.
  std::vector<std::pair<int32_t, int32_t>> penalty_tokens;
};

// A token sampled on the device; logprobs are of the unpenalised distribution.
struct RowSample {
  int32_t token_id = 0;
  float logprob = 0.0f;                        // 0 unless num_logprobs > 0
  std::vector<std::pair<int32_t, float>> top;  // top-num_logprobs (id, logprob)
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;

  virtual std::string device_name() const = 0;  // "cpu" or "cuda:0 (NVIDIA H200)"
  // Element type of the full-precision KV storage (sink, tails, auto pages).
  virtual kernels::DType kv_dtype() const = 0;
  // Bytes of device memory left for the KV cache at `utilization` after weights and the
  // activation peak of a step of `max_batched_tokens` tokens (CPU: 0 = unknown).
  virtual int64_t AvailableKvBytes(double utilization, int max_batched_tokens) const = 0;

  // Bytes of weights the device reads per forward step (for the memory roofline).
  virtual int64_t weight_bytes() const { return 0; }
  // Measured device memory copy bandwidth in bytes/s (read + write counted once each), or 0.
  virtual double MeasureCopyBandwidth() { return 0; }
  // Measured rate of a large matrix product in the weights' dtype, FLOP/s, or 0 (for the
  // compute floor of a step).
  virtual double MeasureMatmulRate() { return 0; }
  // CUDA graphs captured and replayed so far (0 for runners without graphs).
  struct GraphStats {
    int64_t captures = 0, replays = 0;
  };
  virtual GraphStats graph_stats() const { return {}; }

  virtual absl::Status AllocateKv(const kernels::KvCacheSpec& spec, const KvPoolSizes& sizes) = 0;
  virtual int64_t kv_bytes() const = 0;

  // One forward step (see LlamaModel::Forward): logits [rows][vocab] on the host.
  virtual absl::Status Forward(absl::Span<const SequenceStep> batch,
                               std::vector<float>* logits) = 0;

  // Runners that sample on their device (only ids and requested logprobs come back).
  virtual bool supports_device_sampling() const { return false; }
  // One forward step whose output rows (one per SequenceStep without all_logits) are sampled
  // as `rows` says: samples[i] is set for kDevice rows; host_logits holds the kHost rows in
  // order, [num kHost rows][vocab].
  virtual absl::Status ForwardAndSample(absl::Span<const SequenceStep> batch,
                                        absl::Span<const RowSampling> rows,
                                        std::vector<RowSample>* samples,
                                        std::vector<float>* host_logits) {
    (void)batch, (void)rows, (void)samples, (void)host_logits;
    return absl::UnimplementedError("this runner does not sample on its device");
  }

  // Copy jobs of the block manager (fork / copy-on-write of private state).
  virtual void CopySinkBlock(int32_t src, int32_t dst) = 0;
  virtual void CopyTailSlot(int32_t src, int32_t dst) = 0;
};

// The CPU runner: float32 weights (LlamaModel) and a KvCache in host memory. `model` must
// outlive the runner.
std::unique_ptr<ModelRunner> MakeCpuRunner(const LoadedModel& model);

// CUDA: decode steps of up to this many sequences replay CUDA graphs by default.
inline constexpr int kDefaultCudaGraphMaxBatch = 256;

struct RunnerOptions {
  // CUDA: decode steps of up to this many sequences replay CUDA graphs of the dense layers,
  // captured on first use per padded batch size; 0: always eager. Ignored by the CPU runner.
  int cuda_graph_max_batch = kDefaultCudaGraphMaxBatch;
};

// "cpu", "cuda" or "" (auto: cuda when this build has CUDA and a device is present).
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeRunner(const LoadedModel& model,
                                                        const std::string& device,
                                                        const RunnerOptions& options = {});

}  // namespace kitty::models

#endif  // KITTY_MODELS_MODEL_RUNNER_H_
