// File: runtime/bench_serve.h
// -----------------------------------------------------------------------------
// `kitty-bench serve`: a gRPC load generator against a running kitty-serve (like
// `vllm bench serve`). Requests arrive as a Poisson process at --request-rate (or keep a
// fixed --max-concurrency in flight), with prompt and output lengths drawn uniformly in
// [len*(1-range), len*(1+range)]; every request streams and records its time to first token,
// inter-token latencies and end-to-end latency.
#ifndef KITTY_RUNTIME_BENCH_SERVE_H_
#define KITTY_RUNTIME_BENCH_SERVE_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace kitty::runtime {

struct ServeBenchOptions {
  std::string server = "127.0.0.1:50051";
  double request_rate = 0;  // requests/s (Poisson); 0 = all at once, bounded by concurrency
  int max_concurrency = 64;
  int num_prompts = 100;
  int input_len = 128, output_len = 128;
  double range_ratio = 0.0;  // length spread: uniform in len*(1±range)
  int vocab_size = 0;        // 0: ask the server (GetModelInfo)
  uint64_t seed = 0;
  double timeout_s = 600;
};

struct Percentiles {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
};

struct ServeBenchResult {
  double request_rate = 0;  // as configured (0 = unbounded)
  int completed = 0, errors = 0;
  std::vector<std::string> error_samples;  // first few messages
  double duration_s = 0;
  double request_throughput = 0;  // completed requests/s
  double output_throughput = 0;   // generated tokens/s
  double total_throughput = 0;    // (prompt + generated) tokens/s
  Percentiles ttft_s, tpot_s, itl_s, e2e_s;
};

absl::StatusOr<ServeBenchResult> RunServeBench(const ServeBenchOptions& options);

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_BENCH_SERVE_H_
