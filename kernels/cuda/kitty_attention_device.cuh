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

// A register with no defined value (no instruction): the A rows r + 8 of an mma whose results
// in those rows are never read, so that ptxas need not copy a value into them (a duplicated
// operand in the A quad costs one move each).
__device__ __forceinline__ uint32_t Undefined32() {
  uint32_t x;
  asm volatile("" : "=r"(x));
  return x;
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
// shared address base(k) + kStride k (base(k) may depend on k only through constants). The
// global address of chunk group k / 4 is formed once (unpredicated) and the copies use
// immediate offsets within +-2 KB of it: left to ptxas, every copy past the fourth re-derived
// its 64-bit address under its own predicate (two instructions each; SASS, 2026-12-03).
template <int kMax, int kStride, typename BaseFn>
__device__ __forceinline__ void CopyChunks(int lane, int n, const uint8_t* src, BaseFn base) {
  const uint8_t* s = src + 16 * lane;
  const int rem = n - lane;
  StaticFor<kMax>([&](auto kc) {
    constexpr int k = decltype(kc)::value;
    CpAsync16If<32 * k, kStride * k, 512 * (k % 4)>(rem, base(k), s + 2048 * (k / 4));
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

// Shared-memory layout of one staged K head block: swizzled planes (padded to 128 B), then
// idx and meta at their global relative offsets.
struct StageLayout {
  int k_planes;  // bytes of swizzled dense+sparse planes, padded to 128
  int k_bytes;   // staged K block bytes
  int v_bytes;   // staged V block bytes
  int stage;     // k_bytes + v_bytes
};
__host__ __device__ inline StageLayout MakeStageLayout(const KittyGeometry& g) {
  StageLayout l;
  l.k_planes = RoundUp(g.k_idx_offset, 128);
  l.k_bytes = RoundUp(l.k_planes + (g.k_head_bytes - g.k_idx_offset), 16);
  // V meta (4 bytes per token) with 16 bytes of padding per 32 tokens (VMetaPad): the PV loads
  // of lanes c4 = 0..3 (tokens 32 c4 + ..) then fall into different banks.
  l.v_bytes = g.v_head_bytes + 16 * ((g.v_head_bytes - g.v_meta_offset + 127) / 128);
  l.stage = l.k_bytes + l.v_bytes;
  return l;
}

// One warp stages a quantized K head block (kb, global) at `stage` by cp.async: the dense and
// sparse planes swizzled (x = lane + 32 k: line = lane/8 + 4 k keeps its swizzle key -> dst
// advances 512 B), then idx and meta unswizzled at lay.k_planes. At most 2 D planes of 32 B
// and 5 D bytes of idx + meta (the launchers check).
template <int D>
__device__ __forceinline__ void StageKHead(int lane, const KittyGeometry& geo,
                                           const StageLayout& lay, const uint8_t* kb,
                                           uint8_t* stage) {
  const int plane_chunks = geo.k_idx_offset / 16, k_chunks = geo.k_head_bytes / 16;
  const int line0 = lane >> 3;
  const uint32_t dst0 = Smem32(stage + line0 * 128 + (((lane & 7) ^ ((line0 & 3) << 1)) << 4));
  CopyChunks<D / 8, 512>(lane, plane_chunks, kb, [&](int) { return dst0; });
  const uint32_t dst_r = Smem32(stage + lay.k_planes + 16 * lane);
  CopyChunks<(5 * D / 16 + 31) / 32, 512>(lane, k_chunks - plane_chunks, kb + 16 * plane_chunks,
                                          [&](int) { return dst_r; });
}

// One warp stages a quantized V head block (vb, global) at `vs` by cp.async: D = 128 codes
// swizzled (key = (line/8 % 4) * 2), D = 64 unswizzled; meta with 16 B of padding per 32 tokens
// (VMetaPad).
template <int D>
__device__ __forceinline__ void StageVHead(int lane, const KittyGeometry& geo, const uint8_t* vb,
                                           uint8_t* vs) {
  const int code_chunks = geo.v_meta_offset / 16, v_chunks = geo.v_head_bytes / 16;
  if constexpr (D == 128) {
    // x = lane + 32 k: line = lane/8 + 4 k, key = (line/8 % 4) * 2 = (k/2 % 4) * 2.
    const uint32_t vd = Smem32(vs + (lane >> 3) * 128);
    const int l7 = lane & 7;
    uint32_t vsw[4];  // per swizzle key (k/2 % 4)
#pragma unroll
    for (int q = 0; q < 4; ++q) vsw[q] = vd + ((l7 ^ (q << 1)) << 4);
    CopyChunks<D / 16, 512>(lane, code_chunks, vb, [&](int k) { return vsw[(k >> 1) & 3]; });
    const uint32_t md = Smem32(vs + 16 * code_chunks + 16 * lane + 16 * (lane >> 3));
    CopyChunks<1, 576>(lane, v_chunks - code_chunks, vb + 16 * code_chunks,
                       [&](int) { return md; });
  } else {
    for (int x = lane; x < v_chunks; x += 32) {
      const int dst = 16 * x + (x >= code_chunks ? 16 * ((x - code_chunks) >> 3) : 0);
      CpAsync16(vs + dst, vb + 16 * x);
    }
  }
}

// Where the full-precision rows and page ids of one (sequence, kv head) live (KittySeqDesc's
// layout): sink K / V rows, K tail, V tail, the step's new K / V rows from `new_offset`.
template <typename T>
struct SeqRows {
  const T *sink_k, *sink_v, *k_tail, *v_tail, *k_new, *v_new;
  int64_t new_stride;  // elements between two new rows
  const int32_t *k_ids, *v_ids;
};
template <typename T, int D>
__device__ __forceinline__ SeqRows<T> MakeSeqRows(const KittyGeometry& geo,
                                                  const KittyAttentionBatch& batch,
                                                  const KittySeqDesc& seq, int new_offset,
                                                  int kvh) {
  const int hkv = geo.num_kv_heads;
  const int64_t elems_sink = static_cast<int64_t>(geo.sink_capacity) * D;
  SeqRows<T> r;
  r.sink_k = static_cast<const T*>(batch.pools.sink) +
             (static_cast<int64_t>(seq.slot) * 2 * hkv + kvh) * elems_sink;
  r.sink_v = r.sink_k + hkv * elems_sink;
  r.k_tail = static_cast<const T*>(batch.pools.k_tail) +
             (static_cast<int64_t>(seq.slot) * hkv + kvh) * kP * D;
  r.v_tail = static_cast<const T*>(batch.pools.v_tail) +
             (static_cast<int64_t>(seq.slot) * hkv + kvh) * geo.v_tail_capacity * D;
  r.k_new = static_cast<const T*>(batch.k_new) + (static_cast<int64_t>(new_offset) * hkv + kvh) * D;
  r.v_new = static_cast<const T*>(batch.v_new) + (static_cast<int64_t>(new_offset) * hkv + kvh) * D;
  r.new_stride = static_cast<int64_t>(hkv) * D;
  r.k_ids = batch.k_page_ids + seq.page_offset;
  r.v_ids = batch.v_page_ids + seq.page_offset;
  return r;
}

// Chunk kinds of one item (see the header of this file).
struct ItemChunks {
  int n_sink, n_pair, n_kv, n_tail_chunks, tail_rows, total;
};
__host__ __device__ inline ItemChunks CountChunks(const KittySeqDesc& s, const KittyQueryItem& it) {
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

// Eight q channels x (a 16-byte vector of T) to qt + qe as they are and to q16 + qe as fp16.
template <typename T>
__device__ __forceinline__ void StoreQ8(const uint4& x, T* qt, __half* q16, int qe) {
  *reinterpret_cast<uint4*>(qt + qe) = x;
  const T* xe = reinterpret_cast<const T*>(&x);
  uint32_t hh[4];
#pragma unroll
  for (int k = 0; k < 4; ++k) hh[k] = PackHalf2(ToF(xe[2 * k]), ToF(xe[2 * k + 1]));
  *reinterpret_cast<uint4*>(q16 + qe) = make_uint4(hh[0], hh[1], hh[2], hh[3]);
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

// The fragments of four code words wd[0..3] (K: channel rows 4 c4 + j of one k-step; V: tokens
// 32 c4 + ks + (0, 16, 8, 24)): x0 / x1 from the low / high halves of wd[0], wd[1], x2 / x3 from
// wd[2], wd[3]; D / 16 tiles each (Extract8 for 16-bit halves of 8 codes, Extract4 for D = 64
// V words of 8 codes in one 16-bit half).
template <int D>
__device__ __forceinline__ void ExtractWords(const uint32_t* wd, uint32_t* x0, uint32_t* x1,
                                             uint32_t* x2, uint32_t* x3) {
  if constexpr (D == 128) {
    Extract8(__byte_perm(wd[0], wd[1], 0x5410), __byte_perm(wd[0], wd[1], 0x4501), x0);
    Extract8(__byte_perm(wd[0], wd[1], 0x7632), __byte_perm(wd[0], wd[1], 0x6723), x1);
    Extract8(__byte_perm(wd[2], wd[3], 0x5410), __byte_perm(wd[2], wd[3], 0x4501), x2);
    Extract8(__byte_perm(wd[2], wd[3], 0x7632), __byte_perm(wd[2], wd[3], 0x6723), x3);
  } else {
    Extract4(__byte_perm(wd[0], wd[1], 0x4400), x0);
    Extract4(__byte_perm(wd[0], wd[1], 0x5511), x1);
    Extract4(__byte_perm(wd[2], wd[3], 0x4400), x2);
    Extract4(__byte_perm(wd[2], wd[3], 0x5511), x3);
  }
}

// Code words and meta of k-step ks of a staged V head block (StageVHead): tokens tok[j] =
// 32 c4 + ks + (0, 16, 8, 24); vb = VWordBase(r, c4).
__device__ __forceinline__ int VWordBase(int r, int c4) {
  return 1024 * c4 + ((r & 3) << 2) + ((r >> 2) << 4);
}
template <int D>
__device__ __forceinline__ void LoadVWords(const uint8_t* vs_smem, const uint8_t* meta_s, int ks,
                                           int r, int c4, int vb, uint32_t* wd, uint32_t* meta) {
  const int t0 = 32 * c4 + ks;
  const int tok[4] = {t0, t0 + 16, t0 + 8, t0 + 24};
  // Swz32<5>(t0 + off, r), off = 0, 16, 8, 24: line 8 c4 + off/4 + ks/4, chunk key c4.
  const int vk = vb + ((ks >> 2) << 7) + (((ks & 3) ^ c4) << 5);
  constexpr int kOff[4] = {0, 512, 256, 768};
#pragma unroll
  for (int j = 0; j < 4; ++j) {
    meta[j] = *reinterpret_cast<const uint32_t*>(meta_s + 4 * tok[j] + 16 * c4);  // VMetaPad
    if constexpr (D == 128) {
      wd[j] = *reinterpret_cast<const uint32_t*>(vs_smem + vk + kOff[j]);
    } else {
      wd[j] = *reinterpret_cast<const uint16_t*>(vs_smem + tok[j] * (D / 4) + 2 * r);
    }
  }
}

// Scale and min of K channels ch .. ch + 3 of a staged K head block (meta: fp16 scale, fp16
// min per channel) as fp16x2 pairs (channels ch, ch + 1 and ch + 2, ch + 3).
struct KMeta4 {
  uint32_t s01, s23, m01, m23;
};
__device__ __forceinline__ KMeta4 LoadKMeta4(const uint8_t* meta_s, int ch) {
  const uint4 meta = *reinterpret_cast<const uint4*>(meta_s + 4 * ch);
  return {__byte_perm(meta.x, meta.y, 0x5410), __byte_perm(meta.z, meta.w, 0x5410),
          __byte_perm(meta.x, meta.y, 0x7632), __byte_perm(meta.z, meta.w, 0x7632)};
}
// Swizzled offsets of word r of K plane rows 4 c4 + j (k-step 0; row 16 ks + 4 c4 + j is
// +512 B per k-step, and the sparse plane's rank rows D + k0 + 4 c4 + j are at +32 (D + k0)).
__device__ __forceinline__ void KWordOffsets(int r, int c4, int (&kw)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) kw[j] = Swz32<2>(4 * c4 + j, r);
}
__device__ __forceinline__ void LoadKWords(const uint8_t* ks_smem, const int (&kw)[4], int off,
                                           uint32_t (&wd)[4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) wd[j] = *reinterpret_cast<const uint32_t*>(ks_smem + kw[j] + off);
}
// inv[rank] = channel of each boosted rank < db of a staged K head block (its idx bytes hold
// the rank of every channel, or db), by one warp; the warp's later reads see it.
template <int D>
__device__ __forceinline__ void BuildRankMap(int lane, const uint8_t* idx_s, int db, uint8_t* inv) {
  for (int d4 = lane; d4 < D / 4; d4 += 32) {
    const uint32_t idx4 = *reinterpret_cast<const uint32_t*>(idx_s + 4 * d4);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      const int rank = (idx4 >> (8 * j)) & 0xff;
      if (rank < db) inv[rank] = static_cast<uint8_t>(4 * d4 + j);
    }
  }
  __syncwarp();
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
