// File: runtime/engine_flags.h
// -----------------------------------------------------------------------------
// Engine flags shared by kitty-run, kitty-serve and kitty-bench (vLLM's names):
// --max-num-seqs, --max-num-batched-tokens, --kv-cache-memory, --gpu-memory-utilization,
// --max-model-len, --max-queued-requests, --enable-prefix-caching, --device, --sampling-device,
// --cuda-graph-max-batch; plus the cache flags of cache_flags.h.
#ifndef KITTY_RUNTIME_ENGINE_FLAGS_H_
#define KITTY_RUNTIME_ENGINE_FLAGS_H_

#include <cstdint>
#include <string>

#include "absl/flags/declare.h"
#include "runtime/cache_flags.h"
#include "runtime/engine.h"

ABSL_DECLARE_FLAG(int, max_num_seqs);
ABSL_DECLARE_FLAG(int, max_num_batched_tokens);
ABSL_DECLARE_FLAG(int64_t, kv_cache_memory);
ABSL_DECLARE_FLAG(double, gpu_memory_utilization);
ABSL_DECLARE_FLAG(int, max_model_len);
ABSL_DECLARE_FLAG(int, max_queued_requests);
ABSL_DECLARE_FLAG(bool, enable_prefix_caching);
ABSL_DECLARE_FLAG(std::string, device);

namespace kitty::runtime {

// EngineConfig from the flags above and the cache flags.
EngineConfig EngineConfigFromFlags();

// How to load --model for --device: with --device cuda the host keeps no float32 copy of the
// weights (the CUDA runner reads the checkpoint itself).
models::LoadModelOptions LoadOptionsFromFlags();

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_ENGINE_FLAGS_H_
