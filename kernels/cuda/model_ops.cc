// File: kernels/cuda/model_ops.cc
// -----------------------------------------------------------------------------
#include <cublas_v2.h>

#include <cstdlib>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/gemm_tuner.h"
#include "kernels/cuda/model_ops_host.h"

namespace kitty::kernels::cuda {
namespace {

constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

absl::StatusOr<cudaDataType_t> CudaTypeOf(DType t) {
  switch (t) {
    case DType::kFloat16:
      return CUDA_R_16F;
    case DType::kBFloat16:
      return CUDA_R_16BF;
    case DType::kFloat32:
      return CUDA_R_32F;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("GEMM dtype ", std::string(DTypeName(t)), " is not supported"));
  }
}

absl::Status Check(bool ok, const char* what) {
  return ok ? absl::OkStatus() : absl::InvalidArgumentError(what);
}

}  // namespace

absl::StatusOr<ModelElem> ModelElemOf(DType t) {
  if (t == DType::kFloat16) return ModelElem::kF16;
  if (t == DType::kBFloat16) return ModelElem::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("CUDA model tensors are float16 or bfloat16, got ", std::string(DTypeName(t))));
}

absl::StatusOr<std::unique_ptr<CublasGemm>> CublasGemm::Create(cudaStream_t stream,
                                                               GemmTuning tuning) {
  std::unique_ptr<CublasGemm> g(new CublasGemm());
  cublasHandle_t h = nullptr;
  RETURN_IF_ERROR(CublasStatus(cublasCreate(&h), "cublasCreate"));
  g->handle_ = h;
  RETURN_IF_ERROR(CublasStatus(cublasSetStream(h, stream), "cublasSetStream"));
  RETURN_IF_ERROR(g->workspace_.Allocate(kCublasWorkspaceBytes, "cuBLAS workspace"));
  RETURN_IF_ERROR(CublasStatus(cublasSetWorkspace(h, g->workspace_.get(), g->workspace_.bytes()),
                               "cublasSetWorkspace"));
  bool tune = tuning == GemmTuning::kOn || tuning == GemmTuning::kLtOnly;
  if (tuning == GemmTuning::kFromEnv) {
    const char* env = std::getenv("KITTY_GEMM_TUNE");
    tune = env != nullptr && std::string(env) == "1";
  }
  if (tune) {
    ASSIGN_OR_RETURN(g->tuner_,
                     GemmTuner::Create(stream, g->workspace_.get(), g->workspace_.bytes(),
                                       tuning == GemmTuning::kLtOnly));
  }
  return g;
}

CublasGemm::~CublasGemm() {
  tuner_.reset();
  if (handle_ != nullptr) cublasDestroy(handle_);
}

int64_t CublasGemm::shapes_tuned() const { return tuner_ ? tuner_->stats().keys_tuned : 0; }
int64_t CublasGemm::shapes_lt() const { return tuner_ ? tuner_->stats().keys_lt : 0; }

absl::StatusOr<std::pair<cudaDataType_t, cudaDataType_t>> CublasGemm::CheckArgs(
    DType in, const void* x, int rows, int k, const void* w, int n, DType out,
    const void* y) const {
  if (rows < 0 || k <= 0 || n <= 0 || x == nullptr || w == nullptr || y == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("Linear: bad arguments rows=", rows, " k=", k, " n=", n));
  }
  if (in != DType::kFloat16 && in != DType::kBFloat16) {
    return absl::InvalidArgumentError("Linear: inputs must be float16 or bfloat16");
  }
  if (out != DType::kFloat32 && out != in) {
    return absl::InvalidArgumentError("Linear: output must be float32 or the input dtype");
  }
  ASSIGN_OR_RETURN(cudaDataType_t ti, CudaTypeOf(in));
  ASSIGN_OR_RETURN(cudaDataType_t to, CudaTypeOf(out));
  return std::make_pair(ti, to);
}

absl::Status CublasGemm::Default(cudaDataType_t ti, cudaDataType_t to, const void* x, int rows,
                                 int k, const void* w, int n, void* y, float beta) const {
  const float alpha = 1.0f;
  // Column-major view: Y^T (n x rows) = W^T-as-stored (op T of k x n) · X^T (k x rows).
  return CublasStatus(
      cublasGemmEx(handle_, CUBLAS_OP_T, CUBLAS_OP_N, n, rows, k, &alpha, w, ti, k, x, ti, k, &beta,
                   y, to, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
      "cublasGemmEx");
}

absl::Status CublasGemm::Linear(DType in, const void* x, int rows, int k, const void* w, int n,
                                DType out, void* y, float beta) {
  if (rows == 0) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto types, CheckArgs(in, x, rows, k, w, n, out, y));
  const auto [ti, to] = types;
  auto run_default = [&](void* yy, float b) { return Default(ti, to, x, rows, k, w, n, yy, b); };
  if (tuner_ == nullptr) return run_default(y, beta);
  return tuner_->Run(GemmProblem{ti, to, rows, k, n, w, x, y, beta}, run_default);
}

absl::Status CublasGemm::Prepare(DType in, const void* x, int rows, int k, const void* w, int n,
                                 DType out, void* y, float beta) {
  if (rows == 0 || tuner_ == nullptr) return absl::OkStatus();
  ASSIGN_OR_RETURN(auto types, CheckArgs(in, x, rows, k, w, n, out, y));
  const auto [ti, to] = types;
  auto run_default = [&](void* yy, float b) { return Default(ti, to, x, rows, k, w, n, yy, b); };
  return tuner_->Prepare(GemmProblem{ti, to, rows, k, n, w, x, y, beta}, run_default);
}

absl::Status Embedding(DType t, const void* table, const int32_t* ids, int rows, int dim, float* x,
                       cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(rows >= 0 && dim > 0, "Embedding: bad shape"));
  return CudaStatus(LaunchEmbedding(e, table, ids, rows, dim, x, stream), "Embedding");
}

absl::Status RmsNorm(DType t, float* x, const float* residual, const int32_t* row_index,
                     const float* weight, int rows, int dim, float eps, void* out,
                     cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(rows >= 0 && dim > 0 && weight != nullptr, "RmsNorm: bad arguments"));
  return CudaStatus(LaunchRmsNorm(e, x, residual, row_index, weight, rows, dim, eps, out, stream),
                    "RmsNorm");
}

absl::Status RopeTable(const float* inv_freq, const int32_t* positions, int rows, int half,
                       float* cos_sin, cudaStream_t stream) {
  RETURN_IF_ERROR(Check(rows >= 0 && half > 0, "RopeTable: bad shape"));
  return CudaStatus(LaunchRopeTable(inv_freq, positions, rows, half, cos_sin, stream), "RopeTable");
}

absl::Status QkvEpilogue(DType t, const float* qkv, const float* bias, const float* q_norm,
                         const float* k_norm, float eps, const float* cos_sin, int rows,
                         int num_q_heads, int num_kv_heads, int head_dim, void* q, void* k, void* v,
                         cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(rows >= 0 && num_q_heads > 0 && num_kv_heads > 0 && head_dim > 0 &&
                            head_dim % 2 == 0 && (q_norm == nullptr) == (k_norm == nullptr),
                        "QkvEpilogue: bad arguments"));
  return CudaStatus(LaunchQkvEpilogue(e, qkv, bias, q_norm, k_norm, eps, cos_sin, rows, num_q_heads,
                                      num_kv_heads, head_dim, q, k, v, stream),
                    "QkvEpilogue");
}

absl::Status SiluMul(DType t, const void* gate_up, int rows, int inter, void* out,
                     cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(rows >= 0 && inter > 0, "SiluMul: bad shape"));
  return CudaStatus(LaunchSiluMul(e, gate_up, rows, inter, out, stream), "SiluMul");
}

absl::Status KvCopySegments(DType t, const KvCopySegment* segs, int num_segs, int num_blocks,
                            int layer, int num_kv_heads, int head_dim, cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(num_segs >= 0 && num_blocks >= 0 && (num_segs == 0 || segs != nullptr),
                        "KvCopySegments: bad arguments"));
  return CudaStatus(
      LaunchKvCopySegments(e, segs, num_segs, num_blocks, layer, num_kv_heads, head_dim, stream),
      "KvCopySegments");
}

absl::Status GenericPackK(const KittyGeometry& g, DType t, const KittyPackJob* jobs, int num_jobs,
                          cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(g.head_dim > 0 && g.head_dim <= 256 && g.head_dim % 4 == 0,
                        "GenericPackK: head_dim must be a multiple of 4 up to 256"));
  return CudaStatus(LaunchGenericPackK(g, e, jobs, num_jobs, stream), "GenericPackK");
}

absl::Status GenericPackV(const KittyGeometry& g, DType t, const KittyPackJob* jobs, int num_jobs,
                          cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  RETURN_IF_ERROR(Check(g.head_dim > 0 && g.head_dim <= 256 && g.head_dim % 4 == 0,
                        "GenericPackV: head_dim must be a multiple of 4 up to 256"));
  return CudaStatus(LaunchGenericPackV(g, e, jobs, num_jobs, stream), "GenericPackV");
}

absl::Status GenericAttention(const KittyGeometry& g, DType t, const KittyAttentionBatch& batch,
                              cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  const int D = g.head_dim;
  RETURN_IF_ERROR(Check(D == 8 || D == 16 || D == 32 || D == 64 || D == 128 || D == 256,
                        "GenericAttention: head_dim must be 8, 16, 32, 64, 128 or 256"));
  RETURN_IF_ERROR(Check(g.num_kv_heads > 0 && g.num_q_heads % g.num_kv_heads == 0,
                        "GenericAttention: Hq % Hkv != 0"));
  return CudaStatus(LaunchGenericAttention(g, e, batch, stream), "GenericAttention");
}

absl::Status SampleRows(float* logits, int vocab, const SampleRowParams* params, int num_rows,
                        PenaltyToken* penalties, SampleRowResult* out, cudaStream_t stream) {
  RETURN_IF_ERROR(Check(vocab > 0 && num_rows >= 0, "SampleRows: bad shape"));
  if (num_rows == 0) return absl::OkStatus();
  RETURN_IF_ERROR(
      Check(logits != nullptr && params != nullptr && out != nullptr, "SampleRows: null pointer"));
  return CudaStatus(LaunchSampleRows(logits, vocab, params, num_rows, penalties, out, stream),
                    "SampleRows");
}

absl::Status RandomFill(DType t, void* out, int64_t n, uint64_t state_before, float std,
                        cudaStream_t stream) {
  ASSIGN_OR_RETURN(ModelElem e, ModelElemOf(t));
  return CudaStatus(LaunchRandomFill(e, out, n, state_before, std, stream), "RandomFill");
}

}  // namespace kitty::kernels::cuda
