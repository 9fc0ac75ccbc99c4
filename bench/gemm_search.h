// File: bench/gemm_search.h
// -----------------------------------------------------------------------------
// gemm_bench --search: a wide sweep of cuBLASLt configurations for one GEMM shape, to see
// whether anything beyond GemmTuner's 16 best-fit candidates is faster at the row counts of
// large-batch decode (128-512 rows, where the step's GEMMs run at 37-66% of an 8192^3 GEMM's
// rate; docs/BENCHMARKS.md). Candidates, each kept if cublasLtMatmulAlgoCheck accepts it within
// the workspace: the best-fit heuristic (128 asked for); the heuristic limited to each
// algorithm id (128 each); and for each algorithm id, its tiles x stages x split-K 1, 2, 4 (the
// first reduction scheme it supports) x CTA swizzling 0/1, up to kMaxChecksPerAlgo checks.
// Not every configuration: custom options, inner shapes and cluster shapes stay at their
// defaults. Each candidate runs alone on a cold L2 (a memset of `flush` first, as gemm_bench's
// other timings), 3 times, within a time budget per shape; the 8 fastest run again, 15 times
// each, interleaved with the default GEMM and GemmTuner's choice, and the fastest of them once
// more against those two: the reported times come from that last loop (medians), so a "win"
// is not the luck of a best-of-8. A benchmark helper, not used by the engine.
#ifndef KITTY_BENCH_GEMM_SEARCH_H_
#define KITTY_BENCH_GEMM_SEARCH_H_

#include <cuda_runtime_api.h>
#include <library_types.h>

#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace kitty::bench {

// D (n x rows) = op_T(W) (n x k) * X (k x rows) + beta * D in cuBLAS's column-major view, as
// GemmTuner calls it: W stored k x n, X k x rows, D n x rows, bf16 operands, fp32 accumulate.
struct SearchShape {
  int rows = 0, k = 0, n = 0;
  cudaDataType_t out = CUDA_R_32F;  // CUDA_R_32F or CUDA_R_16BF
  float beta = 0.0f;
};

struct SearchResult {
  int checked = 0;          // configurations AlgoCheck accepted
  int timed = 0;            // of those, timed before the budget ran out
  float best_ms = 0.0f;     // the fastest configuration (median, final loop)
  float default_ms = 0.0f;  // run_default in the same loop
  float tuned_ms = 0.0f;    // run_tuned in the same loop
  std::string best;         // "algo A tile T stages S splitk K red R swz Z custom C inner I ..."
};

// run_default / run_tuned enqueue the reference GEMMs (same operands) on `stream`.
absl::StatusOr<SearchResult> SearchLtConfigs(cudaStream_t stream, const SearchShape& shape,
                                             const void* w, const void* x, void* y,
                                             kernels::cuda::DeviceBuffer& flush,
                                             const std::function<absl::Status()>& run_default,
                                             const std::function<absl::Status()>& run_tuned);

}  // namespace kitty::bench

#endif  // KITTY_BENCH_GEMM_SEARCH_H_
