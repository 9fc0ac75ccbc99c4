// File: kernels/cuda/model_ops_host.h
// -----------------------------------------------------------------------------
// Host API of the model kernels (model_ops.h launchers behind shape checks that return a
// Status) and the cuBLAS GEMM of the CUDA backend. Work is enqueued on the given stream; no
// call synchronizes. Host code only (compiles without nvcc).
#ifndef KITTY_KERNELS_CUDA_MODEL_OPS_HOST_H_
#define KITTY_KERNELS_CUDA_MODEL_OPS_HOST_H_

#include <library_types.h>

#include <cstdint>
#include <memory>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/model_ops.h"
#include "kernels/cuda/sampling.h"
#include "kernels/dtype.h"

struct cublasContext;

namespace kitty::kernels::cuda {

// kFloat16 → kF16, kBFloat16 → kBF16; InvalidArgument otherwise.
absl::StatusOr<ModelElem> ModelElemOf(DType t);

// Linear layers through cuBLAS (fp32 accumulation, tensor cores for fp16/bf16 in):
//   y[rows][n] = x[rows][k] · w[n][k]^T + beta · y
// x and w in `in` (fp16/bf16), y in `out` (float32 or `in`). Row-major, PyTorch weight layout.
// The handles are bound to one stream and own a fixed workspace (graph-capture safe). With
// tuning (GemmTuner; opt-in, KITTY_GEMM_TUNE=1), each shape's first call times cublasGemmEx's
// default against cuBLASLt's candidates and later calls run the fastest. Off by default: on an
// H200 it saved 0-7% of the GEMM time on cold-L2 timing and nothing measurable end to end, for
// ~1 s of timing when a workload starts (docs/BENCHMARKS.md, 2026-12-03 19:31).
// Thread safety: none (the thread that owns the stream).
// kLtOnly (tests): each shape runs its fastest cuBLASLt candidate even where the default is
// faster, so that cuBLASLt's path is exercised independently of timing.
enum class GemmTuning { kFromEnv, kOff, kOn, kLtOnly };
class GemmTuner;
class CublasGemm {
 public:
  static absl::StatusOr<std::unique_ptr<CublasGemm>> Create(
      cudaStream_t stream, GemmTuning tuning = GemmTuning::kFromEnv);
  ~CublasGemm();
  CublasGemm(const CublasGemm&) = delete;
  CublasGemm& operator=(const CublasGemm&) = delete;

  absl::Status Linear(DType in, const void* x, int rows, int k, const void* w, int n, DType out,
                      void* y, float beta = 0.0f);
  // Times the shape of this Linear call now if it was not yet (no-op without tuning or while
  // the stream is capturing): call it before capturing a graph that contains the shape. It
  // may overwrite y when beta == 0 and leaves y untouched otherwise.
  absl::Status Prepare(DType in, const void* x, int rows, int k, const void* w, int n, DType out,
                       void* y, float beta = 0.0f);

  bool tuning() const { return tuner_ != nullptr; }
  // Shapes timed so far and how many of them a cuBLASLt algorithm won (0, 0 without tuning).
  int64_t shapes_tuned() const;
  int64_t shapes_lt() const;

 private:
  CublasGemm() = default;
  absl::Status Default(cudaDataType_t ti, cudaDataType_t to, const void* x, int rows, int k,
                       const void* w, int n, void* y, float beta) const;
  // Argument checks of Linear / Prepare; the cuBLAS types of in and out.
  absl::StatusOr<std::pair<cudaDataType_t, cudaDataType_t>> CheckArgs(DType in, const void* x,
                                                                      int rows, int k,
                                                                      const void* w, int n,
                                                                      DType out,
                                                                      const void* y) const;
  cublasContext* handle_ = nullptr;
  DeviceBuffer workspace_;
  std::unique_ptr<GemmTuner> tuner_;
};

// Status wrappers (argument checks, then the launcher of model_ops.h).
absl::Status Embedding(DType t, const void* table, const int32_t* ids, int rows, int dim, float* x,
                       cudaStream_t stream);
absl::Status RmsNorm(DType t, float* x, const float* residual, const int32_t* row_index,
                     const float* weight, int rows, int dim, float eps, void* out,
                     cudaStream_t stream);
absl::Status RopeTable(const float* inv_freq, const int32_t* positions, int rows, int half,
                       float* cos_sin, cudaStream_t stream);
absl::Status QkvEpilogue(DType t, const float* qkv, const float* bias, const float* q_norm,
                         const float* k_norm, float eps, const float* cos_sin, int rows,
                         int num_q_heads, int num_kv_heads, int head_dim, void* q, void* k, void* v,
                         cudaStream_t stream);
absl::Status SiluMul(DType t, const void* gate_up, int rows, int inter, void* out,
                     cudaStream_t stream);
absl::Status KvCopySegments(DType t, const KvCopySegment* segs, int num_segs, int num_blocks,
                            int layer, int num_kv_heads, int head_dim, cudaStream_t stream);
absl::Status GenericPackK(const KittyGeometry& g, DType t, const KittyPackJob* jobs, int num_jobs,
                          cudaStream_t stream);
absl::Status GenericPackV(const KittyGeometry& g, DType t, const KittyPackJob* jobs, int num_jobs,
                          cudaStream_t stream);
absl::Status GenericAttention(const KittyGeometry& g, DType t, const KittyAttentionBatch& batch,
                              cudaStream_t stream);
absl::Status SampleRows(float* logits, int vocab, const SampleRowParams* params, int num_rows,
                        PenaltyToken* penalties, SampleRowResult* out, cudaStream_t stream);
absl::Status RandomFill(DType t, void* out, int64_t n, uint64_t state_before, float std,
                        cudaStream_t stream);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_MODEL_OPS_HOST_H_
