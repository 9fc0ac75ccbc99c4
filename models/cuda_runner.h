// File: models/cuda_runner.h
// -----------------------------------------------------------------------------
// The CUDA ModelRunner (issue 7): weights in bf16/fp16 on the device (as the checkpoint says;
// float32 checkpoints and the float32 builtins run as `float32_as`), the KV pools in device
// memory sized by the block manager, one stream, one cuBLAS handle, per-step metadata
// uploaded with one copy. Attention and page packing use the fused Kitty kernels
// (kernels/cuda/kitty_kernels.h) where they apply (head_dim 64/128, Hq/Hkv <= 8) and the
// generic kernels of kernels/cuda/model_ops.h elsewhere (e.g. stories260K, D = 8).
//
// Real checkpoints are read again from the safetensors mmap (bf16/fp16 copied as is), so
// LoadModel(..., {.host_weights = false}) suffices; builtin:* and synthetic:* weights are
// generated on the device with the exact splitmix64 sequence of LlamaModel::Random (then
// rounded), so synthetic:llama3-8b and friends run without host float32 weights.
//
// Only declared in builds with the CUDA runner (KITTY_HAVE_CUDA_RUNNER).
#ifndef KITTY_MODELS_CUDA_RUNNER_H_
#define KITTY_MODELS_CUDA_RUNNER_H_

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "kernels/cuda/sampling.h"
#include "kernels/dtype.h"
#include "models/model_loader.h"
#include "models/model_runner.h"

namespace kitty::models {

struct CudaRunnerOptions {
  // Use the generic attention and pack kernels even where the Kitty kernels apply (tests
  // compare the two; also set by the environment variable KITTY_CUDA_GENERIC_ATTENTION=1).
  bool force_generic_attention = false;
  // Only the generic pack (with the Kitty attention), or only the generic attention (with the
  // Kitty pack): for tests that isolate one kernel family.
  bool force_generic_pack_only = false;
  bool force_generic_attention_only = false;
  // Device dtype of float32 checkpoints / builtins (kFloat16 or kBFloat16).
  kernels::DType float32_as = kernels::DType::kFloat16;
  // Decode steps of up to this many sequences replay captured CUDA graphs (0: always eager).
  int cuda_graph_max_batch = kDefaultCudaGraphMaxBatch;
};

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model);
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model,
                                                            const CudaRunnerOptions& options);
// MakeRunner's entry: the default options with `cuda_graph_max_batch`.
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model,
                                                            int cuda_graph_max_batch);
// True when the CUDA runtime reports a device.
bool CudaDeviceAvailable();

// The device sampler's inputs for one step's row plans: a SampleRowParams per kDevice row
// (`row` = its index in `rows`) with its penalty tokens, the kDevice rows in order, and the
// kHost rows whose logits are downloaded.
struct DeviceSamplingPlan {
  std::vector<kernels::cuda::SampleRowParams> params;
  std::vector<kernels::cuda::PenaltyToken> penalties;
  std::vector<int32_t> sampled_rows, host_rows;
};
DeviceSamplingPlan PlanDeviceSampling(absl::Span<const RowSampling> rows);

}  // namespace kitty::models

#endif  // KITTY_MODELS_CUDA_RUNNER_H_
