// File: kernels/cuda/model_ops.h
// -----------------------------------------------------------------------------
// Launchers of the Llama-family model kernels of the CUDA backend (issue 7 item 2): embedding
// gather, RMSNorm (optionally fused with the residual add and a row gather), the q/k/v
// epilogue (bias add, Qwen3 q/k RMSNorm, RoPE with precomputed inverse frequencies, so llama3
// scaling included), SiLU-and-mul, the KV append row copies, and the generic (any head_dim)
// Kitty page pack and attention used where the fused Kitty kernels (kitty_kernels.h) do not
// apply (head_dim not 64/128, g > 8), plus the deterministic random weights of builtin and
// synthetic models.
//
// CUDA runtime and standard headers only. Launchers enqueue on `stream`, return the launch
// error and never synchronize. Pointers are device pointers unless said otherwise.
// Activation layout: row-major [rows][dim]; the residual stream is float32, GEMM inputs and
// the KV storage are fp16 or bf16 (`ModelElem`).
#ifndef KITTY_KERNELS_CUDA_MODEL_OPS_H_
#define KITTY_KERNELS_CUDA_MODEL_OPS_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/kitty_params.h"

namespace kitty::kernels::cuda {

// Element type of the model's half-precision tensors.
enum class ModelElem : int { kF16 = 0, kBF16 = 1 };

// x[r][:] = float(table[ids[r]][:]). table: [vocab][dim] elem; x: [rows][dim] float32.
cudaError_t LaunchEmbedding(ModelElem elem, const void* table, const int32_t* ids, int rows,
                            int dim, float* x, cudaStream_t stream);

// For each output row r (source row s = row_index ? row_index[r] : r):
//   if (residual) x[s] += residual[s]   (in place, float32)
//   out[r] = elem(x[s] * rsqrt(mean(x[s]^2) + eps) * weight)
// Sum of squares in fp32. x: [*][dim] float32; weight: [dim] float32; out: [rows][dim] elem.
cudaError_t LaunchRmsNorm(ModelElem elem, float* x, const float* residual, const int32_t* row_index,
                          const float* weight, int rows, int dim, float eps, void* out,
                          cudaStream_t stream);

// cos_sin[r][0..half) = cos(pos[r] * inv_freq), cos_sin[r][half..2*half) = sin(...); the angle
// is a float32 product and cos/sin are evaluated in double (as kernels/cpu RopeTables).
cudaError_t LaunchRopeTable(const float* inv_freq, const int32_t* positions, int rows, int half,
                            float* cos_sin, cudaStream_t stream);

// The q/k/v epilogue of one token row: qkv [rows][(Hq + 2*Hkv)*D] float32 (the fused GEMM's
// output, q heads, then k heads, then v heads) → + bias (nullable, float32 same layout) →
// q/k RMSNorm over D with weights q_norm/k_norm (nullable: no norm) → HF rotate_half RoPE on
// q and k → q [rows][Hq][D], k [rows][Hkv][D], v [rows][Hkv][D] in elem.
cudaError_t LaunchQkvEpilogue(ModelElem elem, const float* qkv, const float* bias,
                              const float* q_norm, const float* k_norm, float eps,
                              const float* cos_sin, int rows, int num_q_heads, int num_kv_heads,
                              int head_dim, void* q, void* k, void* v, cudaStream_t stream);

// out[r][i] = elem(silu(g) * u) with g = gate_up[r][i], u = gate_up[r][inter + i] (fp32 math).
cudaError_t LaunchSiluMul(ModelElem elem, const void* gate_up, int rows, int inter, void* out,
                          cudaStream_t stream);

// One strided copy of `rows` token rows of all kv heads (elements of elem; all strides in
// elements): src element (h, t, d) = src + layer*src_layer_stride + h*src_head_stride +
// t*src_token_stride + d, and likewise for dst. Used for the KV append (sink fill, tail
// writes, staging of sealing pages).
struct KvCopySegment {
  const void* src = nullptr;
  void* dst = nullptr;
  int64_t src_layer_stride = 0, src_head_stride = 0, src_token_stride = 0;
  int64_t dst_layer_stride = 0, dst_head_stride = 0, dst_token_stride = 0;
  int32_t rows = 0;
  int32_t block0 = 0;  // first copy block of this segment (AppendKvCopySegment sets it)
};
// Token rows one copy block moves (per kv head). A segment takes ceil(rows / this) blocks, so a
// step's many one-row appends and its few long staging copies cost what they move.
constexpr int kKvCopyRowsPerBlock = 32;
// Appends `seg` (if it has rows) to `segs`, numbering its blocks from *num_blocks on.
inline void AppendKvCopySegment(std::vector<KvCopySegment>* segs, int* num_blocks,
                                KvCopySegment seg) {
  if (seg.rows <= 0) return;
  seg.block0 = *num_blocks;
  *num_blocks += (seg.rows + kKvCopyRowsPerBlock - 1) / kKvCopyRowsPerBlock;
  segs->push_back(seg);
}
// grid (num_blocks, num_kv_heads); segs in AppendKvCopySegment order, num_blocks its total.
cudaError_t LaunchKvCopySegments(ModelElem elem, const KvCopySegment* segs, int num_segs,
                                 int num_blocks, int layer, int num_kv_heads, int head_dim,
                                 cudaStream_t stream);

// Generic (any head_dim % 4 == 0, any g) page pack over the KittyPackJob list, byte-identical
// to kernels/kitty PackKPage / PackVPage on the same (rounded) inputs; auto pages are copies.
// Jobs with shift_rows are not supported (the runner stages sealing pages instead).
cudaError_t LaunchGenericPackK(const KittyGeometry& g, ModelElem elem, const KittyPackJob* jobs,
                               int num_jobs, cudaStream_t stream);
cudaError_t LaunchGenericPackV(const KittyGeometry& g, ModelElem elem, const KittyPackJob* jobs,
                               int num_jobs, cudaStream_t stream);

// Generic attention with the semantics of KittyAttention (kitty_kernels.h) and AttendCpu:
// one block per (item, query head), fp32 scores / online softmax / accumulation, pages
// dequantized with the CPU DequantKPage / DequantVPage numerics. Slow but simple.
// REQUIRES: head_dim in {8, 16, 32, 64, 128, 256}.
cudaError_t LaunchGenericAttention(const KittyGeometry& g, ModelElem elem,
                                   const KittyAttentionBatch& batch, cudaStream_t stream);

// out[i] = elem(value of LlamaModel::Random's FillRandom for the splitmix64 state
// state_before + (i+1)*golden), i in [0, n): the same weights the CPU builds, rounded.
cudaError_t LaunchRandomFill(ModelElem elem, void* out, int64_t n, uint64_t state_before, float std,
                             cudaStream_t stream);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_MODEL_OPS_H_
