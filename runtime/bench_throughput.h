// File: runtime/bench_throughput.h
// -----------------------------------------------------------------------------
// `kitty-bench throughput`: offline, in-process throughput at a fixed KV memory budget (like
// `vllm bench throughput`). For each cache mode (and each --max-num-seqs of a sweep) it starts
// an engine with the same budget, submits --num-prompts random prompts of --input-len tokens
// at once, each generating exactly --output-len tokens, and measures output and total tokens/s,
// peak concurrent sequences, KV bytes per token, the mean step time against its memory
// roofline ((weights + KV bytes read) / measured copy bandwidth) and compute floor (FLOPs /
// measured GEMM rate), and preemptions. --num-prompts 0 submits one wave that fills the cache.
#ifndef KITTY_RUNTIME_BENCH_THROUGHPUT_H_
#define KITTY_RUNTIME_BENCH_THROUGHPUT_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_loader.h"
#include "runtime/engine.h"

namespace kitty::runtime {

struct ThroughputOptions {
  EngineConfig engine;  // kv_cache_dtype and max_num_seqs are overridden per run
  std::vector<std::string> modes;
  std::vector<int> max_num_seqs;  // sweep values
  int input_len = 128;
  int output_len = 128;
  int num_prompts = 64;
  uint64_t seed = 0;
  bool progress = true;
};

struct ThroughputResult {
  std::string mode;
  int max_num_seqs = 0;
  int num_prompts = 0, input_len = 0, output_len = 0;
  double elapsed_s = 0;
  double output_tokens_per_s = 0;
  double total_tokens_per_s = 0;
  int peak_running = 0;
  int64_t kv_cache_bytes = 0;
  int64_t capacity_tokens = 0;
  double kv_bytes_per_token = 0;  // sealed pages, all layers
  double fp16_bytes_per_token = 0;
  double mean_step_time_s = 0;      // decode-only steps
  double mean_roofline_step_s = 0;  // (weights + KV bytes in use) / copy bandwidth
  double roofline_ratio = 0;        // mean_step_time / mean_roofline
  // Compute floor: step FLOPs (matrices + attention) / measured GEMM rate; the floor of a step
  // is max(memory roofline, compute floor).
  double mean_compute_floor_step_s = 0;
  double mean_floor_step_s = 0;
  double floor_ratio = 0;  // mean_step_time / mean_floor
  double matmul_flops_s = 0;
  int64_t num_preemptions = 0;
  std::string device;
  double copy_bandwidth_bytes_s = 0;
};

absl::StatusOr<std::vector<ThroughputResult>> RunThroughput(
    std::shared_ptr<models::LoadedModel> model, const ThroughputOptions& options);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_BENCH_THROUGHPUT_H_
