#include "runtime/engine_flags.h"

#include <string>

#include "absl/flags/flag.h"

ABSL_FLAG(int, max_num_seqs, 256, "Maximum number of sequences running in one step");
ABSL_FLAG(int, max_num_batched_tokens, 2048,
          "Maximum tokens per step (decodes + prefill chunks; longer prompts are chunked)");
ABSL_FLAG(int64_t, kv_cache_memory, 0,
          "KV cache budget in bytes (0: --gpu-memory-utilization on a GPU, 512 MiB on the CPU)");
ABSL_FLAG(double, gpu_memory_utilization, 0.9,
          "Fraction of GPU memory for weights, activations and the KV cache");
ABSL_FLAG(int, max_model_len, 0, "Maximum sequence length (0: the model's context)");
ABSL_FLAG(int, max_queued_requests, 1024,
          "Requests waiting beyond the running ones before new ones get RESOURCE_EXHAUSTED");
ABSL_FLAG(std::string, device, "", "cuda or cpu (default: cuda when a GPU is present)");
ABSL_FLAG(bool, enable_prefix_caching, true, "Share sealed KV pages between equal prefixes");
ABSL_FLAG(int, cuda_graph_max_batch, kitty::models::kDefaultCudaGraphMaxBatch,
          "CUDA: decode steps of up to this many sequences replay CUDA graphs (captured on "
          "first use per padded batch size); 0: always eager, like vLLM's --enforce-eager");
ABSL_FLAG(std::string, sampling_device, "auto",
          "auto: sample on the GPU when the model runs there (only token ids come back); "
          "host: copy every logits row to the host and sample there");

namespace kitty::runtime {

models::LoadModelOptions LoadOptionsFromFlags() {
  models::LoadModelOptions o;
  o.host_weights = absl::GetFlag(FLAGS_device) != "cuda";
  return o;
}

EngineConfig EngineConfigFromFlags() {
  EngineConfig c;
  c.device = absl::GetFlag(FLAGS_device);
  c.kv_cache_dtype = absl::GetFlag(FLAGS_kv_cache_dtype);
  c.kv_sink_tokens = absl::GetFlag(FLAGS_kv_sink_tokens);
  c.kv_boost_fraction = absl::GetFlag(FLAGS_kv_boost_fraction);
  c.kv_cache_memory_bytes = absl::GetFlag(FLAGS_kv_cache_memory);
  c.gpu_memory_utilization = absl::GetFlag(FLAGS_gpu_memory_utilization);
  c.max_num_seqs = absl::GetFlag(FLAGS_max_num_seqs);
  c.max_num_batched_tokens = absl::GetFlag(FLAGS_max_num_batched_tokens);
  c.max_model_len = absl::GetFlag(FLAGS_max_model_len);
  c.max_queued_requests = absl::GetFlag(FLAGS_max_queued_requests);
  c.enable_prefix_caching = absl::GetFlag(FLAGS_enable_prefix_caching);
  c.sampling_device = absl::GetFlag(FLAGS_sampling_device);
  c.cuda_graph_max_batch = absl::GetFlag(FLAGS_cuda_graph_max_batch);
  return c;
}

}  // namespace kitty::runtime
