#include "kernels/cpu/ops.h"

#include <cblas.h>

#include <cmath>

namespace kitty::kernels::cpu {

namespace {

// OpenBLAS threads only pay off for large products; for the small ones of decode steps and
// tiny models their start-up and spinning (fighting OpenMP's) cost 100x the work. Switch the
// thread count only when the regime changes (the call is not free).
void SetBlasThreadsFor(int64_t flops) {
  static thread_local int current = -1;
  static const int max_threads = openblas_get_num_procs();
  const int want = flops < (int64_t{1} << 24) ? 1 : max_threads;
  if (want != current) {
    openblas_set_num_threads(want);
    current = want;
  }
}

}  // namespace

void Gemm(const float* x, const float* w, int m, int n, int k, float* y) {
  SetBlasThreadsFor(static_cast<int64_t>(m) * n * k);
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);
}

void RmsNorm(const float* x, const float* weight, int64_t rows, int dim, float eps, float* y) {
#pragma omp parallel for if (rows * dim > (1 << 16))
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * dim;
    float* yr = y + r * dim;
    double ss = 0;
    for (int i = 0; i < dim; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / dim) + eps);
    for (int i = 0; i < dim; ++i) yr[i] = (xr[i] * inv) * weight[i];
  }
}

void AddBias(float* x, const float* bias, int64_t rows, int dim) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int i = 0; i < dim; ++i) x[r * dim + i] += bias[i];
  }
}

void Add(float* x, const float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += y[i];
}

void SiluMul(float* gate, const float* up, int64_t n) {
#pragma omp parallel for if (n > (1 << 16))
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void RopeTables(const std::vector<float>& inv_freq, const std::vector<int32_t>& positions,
                std::vector<float>* cos_t, std::vector<float>* sin_t) {
  const size_t half = inv_freq.size();
  cos_t->resize(positions.size() * half);
  sin_t->resize(positions.size() * half);
  for (size_t t = 0; t < positions.size(); ++t) {
    for (size_t i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      (*cos_t)[t * half + i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      (*sin_t)[t * half + i] = static_cast<float>(std::sin(static_cast<double>(angle)));
    }
  }
}

void ApplyRope(float* x, int tokens, int heads, int head_dim, const float* cos_t,
               const float* sin_t) {
  const int half = head_dim / 2;
  for (int t = 0; t < tokens; ++t) {
    const float* c = cos_t + static_cast<int64_t>(t) * half;
    const float* s = sin_t + static_cast<int64_t>(t) * half;
    for (int h = 0; h < heads; ++h) {
      float* v = x + (static_cast<int64_t>(t) * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float a = v[i], b = v[i + half];
        v[i] = a * c[i] - b * s[i];
        v[i + half] = b * c[i] + a * s[i];
      }
    }
  }
}

double LogSumExp(const float* x, int n) {
  float mx = x[0];
  for (int i = 1; i < n; ++i) mx = x[i] > mx ? x[i] : mx;
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp(static_cast<double>(x[i]) - mx);
  return std::log(sum) + mx;
}

}  // namespace kitty::kernels::cpu
