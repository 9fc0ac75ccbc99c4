// Accumulation precision of m16n8k16 fp16 mma with codes as fp16 subnormals at mantissa
// position j (x = c * 4^j * 2^-24) vs the old normal form x = 1 + c/16 (minus the B sum).
// One warp; A rows = 16 "tokens", k = 16 channels per step, 8 steps (128 channels); B = one
// column of random q*s values. Reports rel error of the 16x8 dot products vs double.
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
__device__ void Mma(float* c, const uint32_t* a, const uint32_t* b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
      "{%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}
// A[16][128] halves, B[128][8] halves (column-major per n), out C[16][8]
__global__ void K(const uint16_t* A, const uint16_t* B, float* C) {
  const int lane = threadIdx.x, r = lane >> 2, c4 = lane & 3;
  float acc[4] = {0, 0, 0, 0};
  for (int ks = 0; ks < 8; ++ks) {
    auto ha = [&](int row, int k) { return (uint32_t)A[row * 128 + ks * 16 + k]; };
    auto hb = [&](int k, int n) { return (uint32_t)B[n * 128 + ks * 16 + k]; };
    uint32_t a[4] = {ha(r, 2 * c4) | ha(r, 2 * c4 + 1) << 16,
                     ha(r + 8, 2 * c4) | ha(r + 8, 2 * c4 + 1) << 16,
                     ha(r, 2 * c4 + 8) | ha(r, 2 * c4 + 9) << 16,
                     ha(r + 8, 2 * c4 + 8) | ha(r + 8, 2 * c4 + 9) << 16};
    uint32_t b[2] = {hb(2 * c4, r) | hb(2 * c4 + 1, r) << 16, hb(2 * c4 + 8, r) | hb(2 * c4 + 9, r)
                                                                                      << 16};
    Mma(acc, a, b);
  }
  C[r * 8 + 2 * c4] = acc[0];
  C[r * 8 + 2 * c4 + 1] = acc[1];
  C[(r + 8) * 8 + 2 * c4] = acc[2];
  C[(r + 8) * 8 + 2 * c4 + 1] = acc[3];
}
static uint16_t F2H(float f) {
  __half h = __float2half_rn(f);
  return *reinterpret_cast<uint16_t*>(&h);
}
static double H2D(uint16_t u) {
  __half h;
  *reinterpret_cast<uint16_t*>(&h) = u;
  return __half2float(h);
}
int main() {
  std::mt19937 g(1);
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> cd(0, 3);
  uint16_t *dA, *dB;
  float* dC;
  cudaMalloc(&dA, 16 * 128 * 2);
  cudaMalloc(&dB, 128 * 8 * 2);
  cudaMalloc(&dC, 128 * 4);
  for (int form = 0; form < 7; ++form) {  // 0..4: subnormal position j; 5: 1 + c/16 ; 6: 1 + c/4
    double worst = 0, sum2 = 0, ref2 = 0;
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<uint16_t> A(16 * 128), B(128 * 8);
      std::vector<int> code(16 * 128);
      for (int i = 0; i < 16 * 128; ++i) {
        code[i] = cd(g);
        if (form < 5)
          A[i] = (uint16_t)(code[i] << (2 * form));
        else
          A[i] = F2H(1.0f + code[i] / (form == 5 ? 16.0f : 4.0f));
      }
      for (int i = 0; i < 128 * 8; ++i) B[i] = F2H(nd(g) * std::exp(nd(g)) * 0.05f);
      cudaMemcpy(dA, A.data(), A.size() * 2, cudaMemcpyHostToDevice);
      cudaMemcpy(dB, B.data(), B.size() * 2, cudaMemcpyHostToDevice);
      K<<<1, 32>>>(dA, dB, dC);
      float C[128];
      cudaMemcpy(C, dC, sizeof C, cudaMemcpyDeviceToHost);
      for (int m = 0; m < 16; ++m)
        for (int n = 0; n < 8; ++n) {
          double exact = 0, bsum = 0;
          for (int k = 0; k < 128; ++k) {
            exact += code[m * 128 + k] * H2D(B[n * 128 + k]);
            bsum += H2D(B[n * 128 + k]);
          }
          double got;
          if (form < 5)
            got = C[m * 8 + n] * std::ldexp(1.0, 24 - 2 * form);
          else {
            const double f = form == 5 ? 16 : 4;
            got = f * (C[m * 8 + n] - bsum);
          }  // S1 exact here
          sum2 += (got - exact) * (got - exact);
          ref2 += exact * exact;
          worst = std::fmax(worst, std::fabs(got - exact));
        }
    }
    std::printf("form %d (%s): rel-L2 %.3e  worst abs %.3e\n", form,
                form < 5 ? "subnormal c*4^j*2^-24" : (form == 5 ? "1 + c/16" : "1 + c/4"),
                std::sqrt(sum2 / ref2), worst);
  }
  return 0;
}
