// File: kernels/cuda/kitty_attention_device.cuh
// -----------------------------------------------------------------------------
// Device helpers of the Kitty attention kernels (kitty_attention.cu), kept apart from the
// kernels so that a new attention variant can share them: type conversions, mma.sync wrappers,
// cp.async, the one-LOP3 code extraction (codes as fp16 subnormals), the chunk
// partition of one query item and the split-merge kernel. nvcc only.
#ifndef KITTY_KERNELS_CUDA_KITTY_ATTENTION_DEVICE_CUH_
#define KITTY_KERNELS_CUDA_KITTY_ATTENTION_DEVICE_CUH_

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/device_convert.cuh"
#include "kernels/cuda/kitty_params.h"

namespace kitty::kernels::cuda::attn {

inline constexpr int kP = 128;
inline constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ void Mma16816(float* c, uint32_t a0, uint32_t a1, uint32_t a2,
                                         uint32_t a3, uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};\n"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t PackHalf2(float a, float b) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const uint32_t*>(&h);
}

__device__ __forceinline__ void CpAsync16(void* smem, const void* gmem) {
  const uint32_t s = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;\n" ::"r"(s), "l"(gmem));
}
__device__ __forceinline__ void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// f(integral_constant<int, I>) for I = 0 .. kN-1, unrolled with I a constant expression.
template <int kN, int kI = 0, typename F>
__device__ __forceinline__ void StaticFor(F&& f) {
  if constexpr (kI < kN) {
    f(std::integral_constant<int, kI>{});
    StaticFor<kN, kI + 1>(f);
  }
}

// cp.async of 16 bytes gmem + kG -> smem + kS if rem > kCmp (one setp + one LDGSTS with
// immediate offsets: written in C++, the predicated copies re-derived their 64-bit addresses).
template <int kCmp, int kS, int kG>
__device__ __forceinline__ void CpAsync16If(int rem, uint32_t smem, const void* gmem) {
  asm volatile(
      "{\n.reg .pred q;\nsetp.gt.s32 q, %0, %3;\n"
      "@q cp.async.cg.shared.global [%1+%4], [%2+%5], 16;\n}\n" ::"r"(rem),
      "r"(smem), "l"(gmem), "n"(kCmp), "n"(kS), "n"(kG));
}

// Copies n <= 32 kMax 16-byte chunks by cp.async: chunk x = lane + 32 k from src + 16 x to
// shared address base(k) + kStride k (base(k) may depend on k only through constants).
template <int kMax, int kStride, typename BaseFn>
__device__ __forceinline__ void CopyChunks(int lane, int n, const uint8_t* src, BaseFn base) {
  const uint8_t* s = src + 16 * lane;
  const int rem = n - lane;
  StaticFor<kMax>([&](auto kc) {
    constexpr int k = decltype(kc)::value;
    CpAsync16If<32 * k, kStride * k, 512 * k>(rem, base(k), s);
  });
}

__device__ __forceinline__ uint32_t Smem32(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 2^x as one MUFU.EX2 (exp2f adds a range check and two multiplies for subnormal results;
// probabilities below 2^-126 flush to 0, which the softmax sums cannot see).
__device__ __forceinline__ float Exp2Ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

__host__ __device__ constexpr int RoundUp(int x, int m) { return (x + m - 1) / m * m; }

// Swizzled byte offset of word `w` (4 bytes) of 32-byte row `row`; rows of one 128-byte line
// share a key. kShift = 2 (key = row/4 % 4, K) or 5 (key = row/32 % 4, V tokens).
template <int kShift>
__device__ __forceinline__ int Swz32(int row, int w) {
  const int line = row >> 2;
  const int chunk = ((row & 3) << 1) | (w >> 2);
  const int key = ((row >> kShift) & 3) << 1;
  return line * 128 + ((chunk ^ key) << 4) + ((w & 3) << 2);
}

// Chunk kinds of one item (see the header of this file).
struct ItemChunks {
  int n_sink, n_pair, n_kv, n_tail_chunks, tail_rows, total;
};
__device__ __forceinline__ ItemChunks CountChunks(const KittySeqDesc& s, const KittyQueryItem& it) {
  ItemChunks c;
  c.n_sink = s.sink_tokens > 0 ? 1 : 0;
  c.n_pair = s.num_v_pages;
  c.n_kv = s.num_k_pages - s.num_v_pages;
  c.tail_rows = s.k_tail_tokens + it.num_new;
  c.n_tail_chunks = (c.tail_rows + kP - 1) / kP;
  c.total = c.n_sink + c.n_pair + c.n_kv + c.n_tail_chunks;
  return c;
}

// Merges the splits: grid (items, Hq), block D.
template <typename T, int D>
__global__ void KittyMergeKernel(const float* __restrict__ ws, int num_splits, void* out) {
  const int64_t head = static_cast<int64_t>(blockIdx.x) * gridDim.y + blockIdx.y;
  const int d = threadIdx.x;
  const float* base = ws + head * num_splits * (D + 2);
  float M = -INFINITY;
  for (int s = 0; s < num_splits; ++s) M = fmaxf(M, base[s * (D + 2)]);
  float L = 0.0f, O = 0.0f;
  for (int s = 0; s < num_splits; ++s) {
    const float m = base[s * (D + 2)];
    if (m == -INFINITY) continue;
    const float f = exp2f(m - M);
    L += f * base[s * (D + 2) + 1];
    O += f * base[s * (D + 2) + 2 + d];
  }
  static_cast<T*>(out)[head * D + d] = FromF<T>(O / L);
}

// Code extraction into fp16 SUBNORMALS: (x & (3 << 2j)) per 16-bit half keeps code bits
// 2j..2j+1 inside the mantissa (bits 0-9) with a zero exponent, so the half is exactly
// c * 4^j * 2^-24 (tensor cores take fp16 subnormals as they are). No "1 +" offset: one AND per
// two codes, no shifts, and no extra mma for the sum of the B operand (the previous form
// x = 1 + c/f needed both, and lost f's bits to the cancellation). The mma results are scaled
// back by TileF (a power of two, exact).
template <int kJ>
__device__ __forceinline__ uint32_t Code2(uint32_t x) {
  return x & (0x00030003u << (2 * kJ));
}
// 16-bit halves with 8 codes each (byte 0 = codes 0-3, byte 1 = codes 4-7) as X and with the
// bytes of each half swapped as Sw -> t[i] = fp16x2(code_i / TileF(i)): codes 0-4 from X at
// positions 0-4, codes 5-7 from Sw (X bits 10-15 at Sw bits 2-7) at positions 1-3.
__device__ __forceinline__ void Extract8(uint32_t X, uint32_t Sw, uint32_t* t) {
  t[0] = Code2<0>(X);
  t[1] = Code2<1>(X);
  t[2] = Code2<2>(X);
  t[3] = Code2<3>(X);
  t[4] = Code2<4>(X);
  t[5] = Code2<1>(Sw);
  t[6] = Code2<2>(Sw);
  t[7] = Code2<3>(Sw);
}
// Halves whose low byte holds codes 0-3 -> t[i] for i < 4 (positions 0-3, as Extract8).
__device__ __forceinline__ void Extract4(uint32_t X, uint32_t* t) {
  t[0] = Code2<0>(X);
  t[1] = Code2<1>(X);
  t[2] = Code2<2>(X);
  t[3] = Code2<3>(X);
}
// c = x * TileF(i) for tile i of Extract8/Extract4: 2^24 / 4^position.
__host__ __device__ constexpr float TileF(int i) {
  return static_cast<float>(1 << (24 - 2 * (i <= 4 ? i : i - 4)));
}

template <typename T>
__device__ __forceinline__ void MmaT(float* c, uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3,
                                     uint32_t b0, uint32_t b1) {
  if constexpr (std::is_same_v<T, __half>) {
    Mma16816(c, a0, a1, a2, a3, b0, b1);
  } else {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
  }
}
template <typename T>
__device__ __forceinline__ uint32_t PackT2(float a, float b) {
  if constexpr (std::is_same_v<T, __half>) {
    return PackHalf2(a, b);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
    return *reinterpret_cast<const uint32_t*>(&h);
  }
}
__device__ __forceinline__ uint32_t HMul2(uint32_t a, uint32_t b) {
  const __half2 r =
      __hmul2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b));
  return *reinterpret_cast<const uint32_t*>(&r);
}
// lo = fp16(a*b - hi) (exact residual of the fp16 product hi = fp16(a*b), barring underflow).
__device__ __forceinline__ uint32_t HResid2(uint32_t a, uint32_t b, uint32_t hi) {
  const __half2 r =
      __hfma2(*reinterpret_cast<const __half2*>(&a), *reinterpret_cast<const __half2*>(&b),
              __hneg2(*reinterpret_cast<const __half2*>(&hi)));
  return *reinterpret_cast<const uint32_t*>(&r);
}

}  // namespace kitty::kernels::cuda::attn

#endif  // KITTY_KERNELS_CUDA_KITTY_ATTENTION_DEVICE_CUH_
