// File: bench/gemm_search.h
// -----------------------------------------------------------------------------
// gemm_bench --search: every cuBLASLt configuration of one GEMM shape that cuBLASLt accepts,
// timed, to see whether anything beyond GemmTuner's 16 heuristic candidates is faster at the
// row counts of large-batch decode (128-512 rows, where the step's GEMMs run at 37-66% of an
// 8192^3 GEMM's rate; docs/BENCHMARKS.md). Candidates: the best-fit heuristic (128 asked for),
// the heuristic limited to each algorithm id, and each algorithm id's tiles x stages x split-K
// (1-4, every reduction scheme it supports), each kept if cublasLtMatmulAlgoCheck accepts it
// within the workspace. Each is timed alone on a cold L2 (a memset of `flush` first, as the
// other gemm_bench timings), 3 runs; the 8 fastest again, 15 runs each, interleaved.
// A benchmark helper, not used by the engine.
#ifndef KITTY_BENCH_GEMM_SEARCH_H_
#define KITTY_BENCH_GEMM_SEARCH_H_

#include <cuda_runtime_api.h>
#include <library_types.h>

#include <string>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace kitty::bench {

// D (n x rows) = op_T(W) (n x k) * X (k x rows) + beta * D in cuBLAS's column-major view, as
// GemmTuner calls it: W stored k x n, X k x rows, D n x rows, bf16 operands, fp32 accumulate.
struct SearchShape {
  int rows, k, n;
  cudaDataType_t out;  // CUDA_R_32F or CUDA_R_16BF
  float beta;
};

struct SearchResult {
  int candidates = 0;    // configurations accepted by AlgoCheck and timed
  float best_ms = 0.0f;  // the fastest one's median of 15 cold-L2 runs
  std::string best;      // "algo A tile T stages S splitk K red R swz Z custom C cluster L"
};

absl::StatusOr<SearchResult> SearchLtConfigs(cudaStream_t stream, const SearchShape& shape,
                                             const void* w, const void* x, void* y,
                                             kernels::cuda::DeviceBuffer& flush);

}  // namespace kitty::bench

#endif  // KITTY_BENCH_GEMM_SEARCH_H_
