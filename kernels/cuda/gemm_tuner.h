// File: kernels/cuda/gemm_tuner.h
// -----------------------------------------------------------------------------
// Per-shape choice of the GEMM algorithm by timing (as TensorRT-LLM profiles its GEMM tactics
// and cuBLASLt's documentation recommends): for each (dtypes, accumulate, rows bucket, k, n,
// pointer alignment) the first call times cublasGemmEx's default and up to kCandidates of
// cuBLASLt's heuristic algorithms on the real operands, and every later call of that key runs
// the fastest. Large-batch decode and prefill GEMMs (rows in the hundreds, n = 2560 on a
// 132-SM GPU) were where the default's pick looked weakest; measured on a cold L2 the gain is
// 0-7% (docs/BENCHMARKS.md, 2026-12-03 19:31), so CublasGemm uses it only on request.
//
// Rows are bucketed (powers of two up to 64, then multiples of 64 up to 1024, then of 512) so
// that chunked prefill's varying row counts do not each trigger a timing; an algorithm chosen
// in a bucket is checked (cublasLtMatmulAlgoCheck) once per exact row count before use.
// Each timed run starts with a cold L2, as a layer's weights do in a forward step.
// Timing synchronizes the stream, so it never runs while the stream is being captured into a
// CUDA graph: such calls run the default and leave the key untuned (callers that capture can
// Prepare() the shapes first). Outputs with beta != 0 are timed on a scratch buffer; when that
// buffer cannot be allocated, the key keeps the default.
//
// Host code only (cuBLAS / cuBLASLt / CUDA runtime). Thread safety: none (bound to one stream,
// used by the thread that owns it, like GraphCache).
#ifndef KITTY_KERNELS_CUDA_GEMM_TUNER_H_
#define KITTY_KERNELS_CUDA_GEMM_TUNER_H_

#include <cublasLt.h>
#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <memory>
#include <tuple>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"

namespace kitty::kernels::cuda {

// One GEMM call in cuBLAS's column-major view: D (n x rows) = op_T(W) (n x k) * X (k x rows)
// + beta * D, with W stored k x n (ld k), X k x rows (ld k), D n x rows (ld n).
struct GemmProblem {
  cudaDataType_t in, out;  // operand and output types
  int rows, k, n;
  const void* w;
  const void* x;
  void* y;
  float beta;
};

// Statistics of the tuner (for benchmarks and tests).
struct GemmTunerStats {
  int64_t keys_tuned = 0;     // keys timed so far
  int64_t keys_lt = 0;        // of those, keys where a cuBLASLt algorithm won
  int64_t untuned_calls = 0;  // calls that ran the default without a decision (capture, ...)
};

class GemmTuner {
 public:
  static constexpr int kCandidates = 16;

  // `workspace` (owned by the caller, `workspace_bytes` long) is shared with the default path;
  // both run on `stream`. lt_only (tests): a key takes its fastest cuBLASLt candidate even when
  // the default is faster.
  static absl::StatusOr<std::unique_ptr<GemmTuner>> Create(cudaStream_t stream, void* workspace,
                                                           size_t workspace_bytes,
                                                           bool lt_only = false);
  ~GemmTuner();
  GemmTuner(const GemmTuner&) = delete;
  GemmTuner& operator=(const GemmTuner&) = delete;

  // Runs `p` with the algorithm chosen for its key (timing it first if it has none and the
  // stream is not capturing). `run_default(y, beta)` enqueues the default implementation of
  // `p` with output `y` (the tuner passes a scratch buffer while timing).
  absl::Status Run(const GemmProblem& p,
                   absl::FunctionRef<absl::Status(void* y, float beta)> run_default);

  // Times the key of `p` now if it has no decision yet (no-op while capturing). The
  // operands must be valid device buffers of p's shape; `p.y` is not written when beta != 0.
  absl::Status Prepare(const GemmProblem& p,
                       absl::FunctionRef<absl::Status(void* y, float beta)> run_default);

  const GemmTunerStats& stats() const { return stats_; }

  // The rows bucket of a row count (exposed for tests).
  static int RowsBucket(int rows);

 private:
  // in, out, accumulate, rows bucket, k, n, alignment class
  using Key = std::tuple<int, int, bool, int, int, int, int>;
  struct Choice {
    bool lt = false;  // false: the default implementation
    cublasLtMatmulAlgo_t algo{};
  };
  // Descriptors of one exact shape, made once (creating them costs microseconds per call).
  struct Plan {
    bool checked = false;  // the bucket's algorithm went through AlgoCheck for this shape
    bool usable = false;   // ... and passed
    cublasLtMatmulDesc_t desc = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
    cublasLtMatmulAlgo_t algo{};
  };

  GemmTuner(cudaStream_t stream, void* workspace, size_t workspace_bytes, bool lt_only)
      : stream_(stream),
        workspace_(workspace),
        workspace_bytes_(workspace_bytes),
        lt_only_(lt_only) {}
  static Key KeyOf(const GemmProblem& p);
  absl::StatusOr<Plan*> PlanFor(const GemmProblem& p);
  absl::Status Tune(const GemmProblem& p, absl::FunctionRef<absl::Status(void*, float)> run_default,
                    Choice* out);
  absl::Status Matmul(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const GemmProblem& p,
                      void* y, float beta);
  bool Capturing() const;

  cudaStream_t stream_;
  void* workspace_;
  size_t workspace_bytes_;
  bool lt_only_;
  cublasLtHandle_t lt_ = nullptr;
  cudaEvent_t ev0_ = nullptr, ev1_ = nullptr;
  DeviceBuffer scratch_;
  size_t l2_bytes_ = 0;  // the device's L2 size (0: unknown, no flush while timing)
  DeviceBuffer flush_;   // written before each timed run: a cold L2
  std::map<Key, Choice> choices_;
  // exact shape: Key with the exact row count in place of the bucket
  std::map<Key, std::unique_ptr<Plan>> plans_;
  GemmTunerStats stats_;
};

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_GEMM_TUNER_H_
