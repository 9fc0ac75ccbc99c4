// File: kernels/cpu/ops.h
// -----------------------------------------------------------------------------
// CPU backend model ops: float32, row-major, OpenBLAS GEMM, OpenMP loops. Shapes are given
// per function; all pointers are non-owning.
#ifndef KITTY_KERNELS_CPU_OPS_H_
#define KITTY_KERNELS_CPU_OPS_H_

#include <cstdint>
#include <vector>

namespace kitty::kernels::cpu {

// y[M][N] = x[M][K] · W[N][K]^T (PyTorch Linear layout).
void Gemm(const float* x, const float* w, int m, int n, int k, float* y);

// y[r][:] = x[r][:] / sqrt(mean(x[r]^2) + eps) * weight, for rows r < rows. x may alias y.
void RmsNorm(const float* x, const float* weight, int64_t rows, int dim, float eps, float* y);

// x[r][:] += bias[:], r < rows.
void AddBias(float* x, const float* bias, int64_t rows, int dim);
// x[i] += y[i].
void Add(float* x, const float* y, int64_t n);
// gate[i] = silu(gate[i]) * up[i].
void SiluMul(float* gate, const float* up, int64_t n);

// cos/sin tables [T][D/2] for RoPE: angle = float(pos) * inv_freq[i] in float32 (as HF).
void RopeTables(const std::vector<float>& inv_freq, const std::vector<int32_t>& positions,
                std::vector<float>* cos_t, std::vector<float>* sin_t);
// HF rotate_half RoPE on x[T][heads][D] in place: element i pairs with i + D/2.
void ApplyRope(float* x, int tokens, int heads, int head_dim, const float* cos_t,
               const float* sin_t);

// Natural-log softmax statistics of one logits row: returns log(sum(exp(x - max))) + max.
double LogSumExp(const float* x, int n);

}  // namespace kitty::kernels::cpu

#endif  // KITTY_KERNELS_CPU_OPS_H_
