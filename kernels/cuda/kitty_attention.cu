// File: kernels/cuda/kitty_attention.cu
// -----------------------------------------------------------------------------
// Fused Kitty attention over sink + sealed K/V pages + fp tails + the new tokens, for decode
// (one query token per sequence) and prefill chunks (one item per query token, causal through
// KittyQueryItem::num_new; with KittyQueryGroups, up to 8/g consecutive tokens of a
// chunk share a CTA as extra mma columns, each masked to its own causal limit).
// Flash-decoding: grid (splits, Hkv, items or groups); each CTA takes a range
// of 128-token chunks of one (item, kv head) and all g <= 8 query heads of that group, its
// 4 warps take chunks round robin, keep an fp32 online softmax each, merge in shared memory,
// and a second kernel merges the splits.
//
// Quantized pages go through tensor cores (mma.sync m16n8k16, fp16 in, fp32 accumulate) on
// codes expanded in registers; no dequantized K/V goes to memory. Page bytes go global ->
// shared memory by cp.async (double buffered per warp), with an XOR swizzle of 16-byte chunks
// so that the fragment loads are bank-conflict free.
//
// Fragment mapping (lane = 4*r + c4; PTX m16n8k16 A row r/r+8, k 2c4..; B k 2c4.., n r):
//   QK (rows = tokens, n = heads):  tile i row r -> token 16r+i, row r+8 -> token 16r+8+i;
//                                   k-step ks k-rows (2c4, 2c4+1, 2c4+8, 2c4+9) -> channels
//                                   16ks + 4c4 + (0,1,2,3)
//   PV (rows = channels, n = heads): tile m row r -> channel (D/8)r + m, row r+8 -> (D/8)r+D/16+m;
//                                   k-step ks k-rows -> tokens 32c4+ks + (0,16,8,24)
// Logits stay in the QK accumulators through the online softmax (register reductions); only the
// probabilities go through shared memory, as sc[head][u(t)], u(t) = 8*(t%16) + t/16 (u >= 64
// stored 8 floats further, row stride 136: kPHalf, kScStride), to reach the PV B-operand layout.
//
// KittyAttentionKernelV2 (below): scale/min folded out of the dequant, one LOP3 per two codes,
// tensor cores for full-precision rows too. Shared device helpers: kitty_attention_device.cuh.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <type_traits>
#include <vector>

#include "kernels/cuda/kitty_attention_device.cuh"
#include "kernels/cuda/kitty_launch.h"
#include "kernels/cuda/smem_limit.h"

namespace kitty::kernels::cuda {
namespace {

using namespace attn;  // NOLINT(build/namespaces): this file's kernels are built from them

constexpr int kWarps = 4;
constexpr int kG = 8;  // query heads per kv head handled (mma n = 8)
// Probability rows: tokens with u(t) < 64 at u, the others at u + 8 (kPHalf); stride 136 = 8
// mod 32 makes the softmax stores and the PV fragment loads bank-conflict free.
constexpr int kScStride = 136;  // floats per head row of the probability buffer
constexpr int kPHalf = 72;      // offset of u = 64..127
constexpr int kQPad = 16;       // q rows of D + 16 halves: conflict-free fragment loads

// Host-chosen knobs of the V2 kernel (defaults and KITTY_ATTN_* overrides: AttnTuningFor).
struct AttnTuning {
  // Cost of a chunk in the warps' static split, in quarter pages (a sealed K+V page pair = 4):
  // a tail chunk (K tail + new rows, V tail rows; full precision), the sink chunk, a sealed K
  // page whose V rows are still in the V tail.
  int w_tail, w_sink, w_mixed;
  // Units the sink and the first tail chunk are each cut into (KittySplitPlan::fp_parts).
  int fp_parts;
};

// =====================================================================================
// V2 kernel (issue 7 performance pass). Per chunk:
//  - Quantized pages: scale and min are folded out of the dequant (exact algebra):
//      K: score_t = sum_d (q_d s_d) c_td + sum_d q_d m_d   (per-channel s, m of the page)
//      V: o_d     = sum_t (p_t s_t) c_td + sum_t p_t m_t   (per-token s, m)
//    so the tensor-core A operand is a function of the 2-bit codes only. One AND per fp16x2
//    keeps two codes in place inside the mantissa with a zero exponent: an fp16 subnormal
//    x = c / f, f = 2^24 / 4^position (TileF; fixed per tile by which bit pair the code sits
//    in), exact. The min terms come from one extra mma per k-step with the min rows.
//    B operands: q' = q*s (fp16) for K, p' = p*s (fp16) for V; boosted (INT4) K channels:
//    c = lo + 4 hi, the hi plane is a second GEMM over the DB ranks with B'' = 4 q' of the
//    channel of each rank.
//  - Full-precision rows (sink, tails, new tokens, auto pages) also use mma (fp16 or bf16
//    operands = the storage type; p rounded to it) instead of the fp32 FMA loops.
//  - O is kept as o = sum_t p' x per tile plus PM = sum p m per head:
//      O = f_m o + PM  (f_m per tile); full-precision rows add p v / f_m to o.
// =====================================================================================

template <typename T, int D, bool kQuant, bool kSparse, int kUnroll, bool kPack>
struct AttnV2 {
  static constexpr int kKSteps = D / 16;
  static constexpr int kMTiles = D / 16;
  static constexpr int kCpt = D / 8;
  // Logits per 16-token tile per lane, in registers from the QK mma to the softmax. kPack
  // (g <= 4): B column 2h carries the hi and 2h+1 the lo part of q*s of head h (one mma for
  // both), so lane c4 holds hi and lo of head c4 for rows r, r+8 and adds them in place.
  static constexpr int kNV = kPack ? 2 : 4;

  struct Warp {
    int lane, r, c4;
    float m[2], l[2];     // online-softmax max / sum per head slot (Slot; kPack: one head)
    float o[kMTiles][4];  // sum p' x (quantized V) + sum p v / f (full precision)
    float pm[4];          // sum p m per head (fragment layout: [0] head 2c4, [1] 2c4+1)
  };

  // An empty online-softmax state (m = -inf, l = o = pm = 0).
  static __device__ __forceinline__ void Reset(Warp& w) {
    w.m[0] = w.m[1] = -INFINITY;
    w.l[0] = w.l[1] = 0.0f;
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) w.o[m][0] = w.o[m][1] = w.o[m][2] = w.o[m][3] = 0.0f;
#pragma unroll
    for (int k = 0; k < 4; ++k) w.pm[k] = 0.0f;
  }

  // Logit x[i][j] of a lane after Scores*: head slot Slot(j) (kPack: head c4; else heads 2c4,
  // 2c4+1), token row r or, if HiRow(j), r+8.
  static __device__ __forceinline__ int HeadBase(const Warp& w) { return kPack ? w.c4 : 2 * w.c4; }
  static __host__ __device__ constexpr int Slot(int j) { return kPack ? 0 : j & 1; }
  static __host__ __device__ constexpr bool HiRow(int j) { return kPack ? j == 1 : j >= 2; }

  // ---- logits (log2 units) of n full-precision K rows (tensor cores, T operands) ----------
  // Rows t < n exist; without kPack, column HeadBase + k also needs t < lim[k] (query groups:
  // each token of the group sees the new rows up to itself).
  // Only tiles [ib, ie) (tokens t with t % 8 in that range: a part of a chunk); the others -inf.
  template <typename RowFn>
  static __device__ void ScoresFp(const Warp& w, const T* qt, int n, const int (&lim)[2], float sl2,
                                  RowFn row, float (&x)[8][kNV], int ib = 0, int ie = 8) {
    uint32_t b[kKSteps][2];  // q rows >= g are zero (kPack: columns 2h and 2h+1 both head h)
    const T* qrow = qt + (kPack ? w.r >> 1 : w.r) * (D + kQPad);
#pragma unroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const uint2 v = *reinterpret_cast<const uint2*>(qrow + ks * 16 + 4 * w.c4);
      b[ks][0] = v.x;
      b[ks][1] = v.y;
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int ta = 16 * w.r + i, tb = ta + 8;
      const bool in = i >= ib && i < ie;
      const T* pa = in && ta < n ? row(ta) : nullptr;
      const T* pb = in && tb < n ? row(tb) : nullptr;
      uint2 va[kKSteps], vb[kKSteps];
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks) {
        va[ks] = pa ? *reinterpret_cast<const uint2*>(pa + ks * 16 + 4 * w.c4) : make_uint2(0, 0);
        vb[ks] = pb ? *reinterpret_cast<const uint2*>(pb + ks * 16 + 4 * w.c4) : make_uint2(0, 0);
      }
      float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int ks = 0; ks < kKSteps; ++ks)
        MmaT<T>(c, va[ks].x, vb[ks].x, va[ks].y, vb[ks].y, b[ks][0], b[ks][1]);
      if constexpr (kPack) {
        x[i][0] = pa ? c[0] * sl2 : -INFINITY;
        x[i][1] = pb ? c[2] * sl2 : -INFINITY;
      } else {
        x[i][0] = pa && ta < lim[0] ? c[0] * sl2 : -INFINITY;
        x[i][1] = pa && ta < lim[1] ? c[1] * sl2 : -INFINITY;
        x[i][2] = pb && tb < lim[0] ? c[2] * sl2 : -INFINITY;
        x[i][3] = pb && tb < lim[1] ? c[3] * sl2 : -INFINITY;
      }
    }
  }

  // ---- scores of one staged quantized K head block -----------------------------------------
  static __device__ void ScoresQuant(const Warp& w, const KittyGeometry& geo,
                                     const uint8_t* ks_smem, const StageLayout& lay,
                                     const __half* q16, uint8_t* inv, float sl2,
                                     float (&x)[8][kNV]) {
    const uint8_t* idx_s = ks_smem + lay.k_planes;
    const uint8_t* meta_s = idx_s + (geo.k_meta_offset - geo.k_idx_offset);
    // B column n = r: head r (hi, then lo in a second mma) or, with kPack, hi (r even) or lo
    // (r odd) of head r / 2.
    const __half* qrow = q16 + (kPack ? (w.r >> 1) : w.r) * (D + kQPad);
    const bool lo_col = kPack && (w.r & 1);
    float acc[8][4];
#pragma unroll
    for (int i = 0; i < 8; ++i) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = 0.0f;
    float mq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int kw[4];
    KWordOffsets(w.r, w.c4, kw);
    auto step = [&](const uint32_t* wd, uint32_t b0, uint32_t b1, uint32_t l0, uint32_t l1) {
      uint32_t a0[8], a1[8], a2[8], a3[8];
      ExtractWords<128>(wd, a0, a1, a2, a3);  // K words: 8 codes per half at every D
#pragma unroll
      for (int i = 0; i < 8; ++i) Mma16816(acc[i], a0[i], a1[i], a2[i], a3[i], b0, b1);
      if constexpr (!kPack) {  // q' = hi + lo: ~22-bit q*s instead of fp16-rounded
#pragma unroll
        for (int i = 0; i < 8; ++i) Mma16816(acc[i], a0[i], a1[i], a2[i], a3[i], l0, l1);
      }
    };
#pragma unroll kUnroll
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int ch = ks * 16 + 4 * w.c4;
      const KMeta4 mt = LoadKMeta4(meta_s, ch);
      const uint2 qv = *reinterpret_cast<const uint2*>(qrow + ch);
      uint32_t wd[4];
      LoadKWords(ks_smem, kw, 512 * ks, wd);  // rows 16 ks + 4 c4 + j
      const uint32_t h0 = HMul2(qv.x, mt.s01), h1 = HMul2(qv.y, mt.s23);
      const uint32_t l0 = HResid2(qv.x, mt.s01, h0), l1 = HResid2(qv.y, mt.s23, h1);
      if constexpr (kPack) {
        step(wd, lo_col ? l0 : h0, lo_col ? l1 : h1, 0u, 0u);
      } else {
        step(wd, h0, h1, l0, l1);
      }
      // rows r + 8 (mq[2], mq[3]) are not read: no copies of the mins into them
      Mma16816(mq, mt.m01, Undefined32(), mt.m23, Undefined32(), qv.x, qv.y);
    }
    if constexpr (kSparse) {
      const int db = geo.boost_channels;
      BuildRankMap<D>(w.lane, idx_s, db, inv);
      const uint16_t* qbits = reinterpret_cast<const uint16_t*>(qrow);
      for (int k0 = 0; k0 < db; k0 += 16) {
        const int rk = k0 + 4 * w.c4;
        uint32_t bb[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          uint32_t v = 0;  // +0.0 for ranks >= DB
          if (rk + j < db) {
            const int ch = inv[rk + j];
            const uint32_t qq = qbits[ch];
            const uint32_t ss = *reinterpret_cast<const uint16_t*>(meta_s + 4 * ch);
            v = qq | (ss << 16);
          }
          bb[j] = v;
        }
        // pairs (q, s) -> 4 q s for ranks (rk, rk+1) and (rk+2, rk+3)
        const uint32_t q01 = __byte_perm(bb[0], bb[1], 0x5410),
                       s01 = __byte_perm(bb[0], bb[1], 0x7632);
        const uint32_t q23 = __byte_perm(bb[2], bb[3], 0x5410),
                       s23 = __byte_perm(bb[2], bb[3], 0x7632);
        const uint32_t four = 0x44004400u;  // fp16x2 (4, 4)
        const uint32_t h0 = HMul2(q01, s01), h1 = HMul2(q23, s23);
        uint32_t b0 = HMul2(h0, four), b1 = HMul2(h1, four);
        uint32_t l0 = HMul2(HResid2(q01, s01, h0), four), l1 = HMul2(HResid2(q23, s23, h1), four);
        if constexpr (kPack) {
          b0 = lo_col ? l0 : b0;
          b1 = lo_col ? l1 : b1;
        }
        uint32_t wd[4];
        LoadKWords(ks_smem, kw, 32 * (D + k0), wd);  // rank rows D + k0 + 4 c4 + j
        step(wd, b0, b1, l0, l1);
      }
      __syncwarp();  // inv is rewritten by the next page
    }
    // logit = (f acc + MQ) sl2, f = TileF per tile; MQ = q . min (with kPack, columns 2c4 and
    // 2c4+1 of mq are both head c4).
    const float bz[2] = {mq[0] * sl2, mq[1] * sl2};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const float fs = TileF(i) * sl2;
      if constexpr (kPack) {  // hi + lo of head c4, rows r and r+8
        x[i][0] = fmaf(acc[i][0] + acc[i][1], fs, bz[0]);
        x[i][1] = fmaf(acc[i][2] + acc[i][3], fs, bz[0]);
      } else {
#pragma unroll
        for (int j = 0; j < 4; ++j) x[i][j] = fmaf(acc[i][j], fs, bz[j & 1]);
      }
    }
  }

  // ---- online softmax on the logits in registers; p -> sc -------------------------------
  // Lazy rescaling: the running max w.m (uniform over the lanes of a head) only moves when a
  // logit exceeds it by more than kLazyMax (log2 units), so p <= 2^kLazyMax; most pages then
  // need no cross-lane max, no exp of the correction and no rescale of o and pm. w.l is a
  // per-lane partial sum (reduced in the warp merge).
  static constexpr float kLazyMax = 8.0f;
  static __device__ void Softmax(Warp& w, const float (&x)[8][kNV], float* sc) {
    constexpr int kSlots = kPack ? 1 : 2;
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
      for (int j = 0; j < kNV; ++j) mx[Slot(j)] = fmaxf(mx[Slot(j)], x[i][j]);
    }
    bool grow = mx[0] > w.m[0] + kLazyMax;
    if constexpr (!kPack) grow = grow || mx[1] > w.m[1] + kLazyMax;
    if (__any_sync(0xffffffffu, grow)) {
      // lanes holding the same heads: all r (xor 4, 8, 16)
#pragma unroll
      for (int s = 4; s < 32; s <<= 1) {
#pragma unroll
        for (int j = 0; j < kSlots; ++j)
          mx[j] = fmaxf(mx[j], __shfl_xor_sync(0xffffffffu, mx[j], s));
      }
      float alpha[2];
#pragma unroll
      for (int j = 0; j < kSlots; ++j) {
        const float mn = fmaxf(w.m[j], mx[j]);
        if constexpr (kPack) {
          alpha[j] = Exp2Ftz(w.m[j] - mn);
        } else {  // a query-group column with no visible row yet keeps m = -inf, o = l = 0
          alpha[j] = mn == -INFINITY ? 1.0f : Exp2Ftz(w.m[j] - mn);
        }
        w.l[j] *= alpha[j];
        w.m[j] = mn;
      }
      if constexpr (kPack) {
        // V accumulator columns 2c4, 2c4+1 are heads 2c4, 2c4+1, whose alpha is in lanes c4' =
        // 2c4, 2c4+1 of the same r (c4 >= 2: columns 4-7, unused heads).
        const int base = w.lane & ~3;
        const float a = alpha[0];
        alpha[0] = __shfl_sync(0xffffffffu, a, base | ((2 * w.c4) & 3));
        alpha[1] = __shfl_sync(0xffffffffu, a, base | ((2 * w.c4 + 1) & 3));
      }
      // V accumulators: columns 2c4, 2c4+1
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
        w.o[m][0] *= alpha[0];
        w.o[m][1] *= alpha[1];
        w.o[m][2] *= alpha[0];
        w.o[m][3] *= alpha[1];
      }
#pragma unroll
      for (int k = 0; k < 4; ++k) w.pm[k] *= alpha[k & 1];
    }
    float* s0 = sc + HeadBase(w) * kScStride;
    float* s1 = s0 + kScStride;
    // A query-group column (never with kPack) can see no row of a chunk yet (m = -inf): p =
    // 2^-inf = 0, not NaN.
    float mref[2] = {w.m[0], w.m[1]};
    if constexpr (!kPack) {
      mref[0] = w.m[0] == -INFINITY ? 0.0f : w.m[0];
      mref[1] = w.m[1] == -INFINITY ? 0.0f : w.m[1];
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
#pragma unroll
      for (int j = 0; j < kNV; ++j) {
        const int u = (HiRow(j) ? kPHalf : 0) + 8 * i + w.r;
        const float p = Exp2Ftz(x[i][j] - mref[Slot(j)]);
        (Slot(j) ? s1 : s0)[u] = p;
        w.l[Slot(j)] += p;
      }
    }
    __syncwarp();
  }

  // Sum of the per-lane partial softmax sums over the lanes of each head (all r: xor 4, 8, 16).
  static __device__ __forceinline__ void ReduceL(Warp& w) {
#pragma unroll
    for (int s = 4; s < 32; s <<= 1) {
      w.l[0] += __shfl_xor_sync(0xffffffffu, w.l[0], s);
      if constexpr (!kPack) w.l[1] += __shfl_xor_sync(0xffffffffu, w.l[1], s);
    }
  }

  // p of head r for k-step ks: tokens t0, t0+16, t0+8, t0+24 (t0 = 32 c4 + ks)
  static __device__ __forceinline__ void LoadP(const Warp& w, const float* sc, int ks, float* p) {
    const float* prow = sc + w.r * kScStride;
    const float2 pa = *reinterpret_cast<const float2*>(prow + 8 * ks + 2 * w.c4);
    const float2 pb = *reinterpret_cast<const float2*>(prow + kPHalf + 8 * ks + 2 * w.c4);
    p[0] = pa.x;
    p[1] = pa.y;
    p[2] = pb.x;
    p[3] = pb.y;
  }

  // ---- O += P V over n full-precision V rows (tensor cores) --------------------------------
  // Only k-steps [ib, ie) (the tokens of ScoresFp's tiles [ib, ie)).
  template <typename RowFn>
  static __device__ void PvFp(Warp& w, const float* sc, int n, RowFn row, int ib = 0, int ie = 8) {
    constexpr int kVec = kCpt / 8;
    float tmp[kMTiles][4];
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) tmp[m][0] = tmp[m][1] = tmp[m][2] = tmp[m][3] = 0.0f;
#pragma unroll 2
    for (int ks = ib; ks < ie; ++ks) {
      const int t0 = 32 * w.c4 + ks;
      const int tok[4] = {t0, t0 + 16, t0 + 8, t0 + 24};
      uint32_t v[4][kCpt / 2];
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        if (tok[j] < n) {
          const uint4* src = reinterpret_cast<const uint4*>(row(tok[j]) + kCpt * w.r);
#pragma unroll
          for (int x = 0; x < kVec; ++x) {
            const uint4 u = src[x];
            v[j][4 * x] = u.x;
            v[j][4 * x + 1] = u.y;
            v[j][4 * x + 2] = u.z;
            v[j][4 * x + 3] = u.w;
          }
        } else {
#pragma unroll
          for (int x = 0; x < kCpt / 2; ++x) v[j][x] = 0u;
        }
      }
      float p[4];
      LoadP(w, sc, ks, p);
      const uint32_t b0 = PackT2<T>(p[0], p[1]), b1 = PackT2<T>(p[2], p[3]);
      // bf16 (8-bit mantissa): p = hi + lo in two mma, as p can be up to 2^kLazyMax and no
      // longer 1 exactly at the max
      constexpr bool kSplitP = std::is_same_v<T, __nv_bfloat16>;
      uint32_t c0 = 0, c1 = 0;
      if constexpr (kSplitP) {
        c0 = PackT2<T>(p[0] - __uint_as_float(b0 << 16), p[1] - __uint_as_float(b0 & 0xffff0000u));
        c1 = PackT2<T>(p[2] - __uint_as_float(b1 << 16), p[3] - __uint_as_float(b1 & 0xffff0000u));
      }
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) {
        // element e of a token's kCpt channels: row r -> e = m, row r+8 -> e = kMTiles + m
        const int e0 = m, e1 = kMTiles + m;
        const uint32_t s0 = (e0 & 1) ? 0x7632 : 0x5410, s1 = (e1 & 1) ? 0x7632 : 0x5410;
        const uint32_t a0 = __byte_perm(v[0][e0 / 2], v[1][e0 / 2], s0);
        const uint32_t a1 = __byte_perm(v[0][e1 / 2], v[1][e1 / 2], s1);
        const uint32_t a2 = __byte_perm(v[2][e0 / 2], v[3][e0 / 2], s0);
        const uint32_t a3 = __byte_perm(v[2][e1 / 2], v[3][e1 / 2], s1);
        MmaT<T>(tmp[m], a0, a1, a2, a3, b0, b1);
        if constexpr (kSplitP) MmaT<T>(tmp[m], a0, a1, a2, a3, c0, c1);
      }
    }
#pragma unroll
    for (int m = 0; m < kMTiles; ++m) {
      const float inv = 1.0f / TileF(m);
#pragma unroll
      for (int k = 0; k < 4; ++k) w.o[m][k] = fmaf(tmp[m][k], inv, w.o[m][k]);
    }
  }

  // ---- O += P V over one staged quantized V head block -------------------------------------
  static __device__ void PvQuant(Warp& w, const KittyGeometry& geo, const uint8_t* vs_smem,
                                 const float* sc) {
    const uint8_t* meta_s = vs_smem + geo.v_meta_offset;
    const int vb = VWordBase(w.r, w.c4);
#pragma unroll kUnroll
    for (int ks = 0; ks < 8; ++ks) {
      float p[4];
      LoadP(w, sc, ks, p);
      uint32_t wd[4], meta[4];
      LoadVWords<D>(vs_smem, meta_s, ks, w.r, w.c4, vb, wd, meta);
      const uint32_t pp01 = PackHalf2(p[0], p[1]), pp23 = PackHalf2(p[2], p[3]);
      const uint32_t s01 = __byte_perm(meta[0], meta[1], 0x5410),
                     m01 = __byte_perm(meta[0], meta[1], 0x7632);
      const uint32_t s23 = __byte_perm(meta[2], meta[3], 0x5410),
                     m23 = __byte_perm(meta[2], meta[3], 0x7632);
      const uint32_t b0 = HMul2(pp01, s01), b1 = HMul2(pp23, s23);
      uint32_t a0[8], a1[8], a2[8], a3[8];
      ExtractWords<D>(wd, a0, a1, a2, a3);
#pragma unroll
      for (int m = 0; m < kMTiles; ++m) Mma16816(w.o[m], a0[m], a1[m], a2[m], a3[m], b0, b1);
      Mma16816(w.pm, m01, Undefined32(), m23, Undefined32(), pp01, pp23);  // pm[2..3] unread
    }
  }
};

// Units of one (item, kv head) in a logical order L: full-precision units first (the parts of
// tail chunk 0, the other tail chunks, the parts of the sink), then the sealed K pages whose V is
// in the V tail, then the page pairs: five cost classes in that order, each unit costing
// `cost[class]` quarter pages (a page pair = 4; from AttnTuning). Warps take contiguous ranges
// of L balanced by these costs; static, so the summation order (and the output) does not depend
// on timing. Part p of a chunk: tiles / k-steps [8 p / P, 8 (p + 1) / P).
struct UnitClasses {
  static constexpr int kN = 5;
  int n_tp, n_t1, n_sp, n_fpu, total;  // parts of tail chunk 0, tail chunks 1.., sink parts
  int bound[kN + 1];                   // class k: units [bound[k], bound[k + 1])
  int cost[kN];
};
__host__ __device__ inline int IMax(int a, int b) { return a > b ? a : b; }
__host__ __device__ inline int IMin(int a, int b) { return a < b ? a : b; }
__host__ __device__ inline UnitClasses MakeUnitClasses(const ItemChunks& ch, const AttnTuning& tune,
                                                       int fp_parts) {
  UnitClasses u;
  u.n_tp = ch.n_tail_chunks > 0 ? fp_parts : 0;
  u.n_t1 = IMax(ch.n_tail_chunks - 1, 0);
  u.n_sp = ch.n_sink * fp_parts;
  u.n_fpu = u.n_tp + u.n_t1 + u.n_sp;
  u.total = u.n_fpu + ch.n_kv + ch.n_pair;
  const int bound[] = {0, u.n_tp, u.n_tp + u.n_t1, u.n_fpu, u.n_fpu + ch.n_kv, u.total};
  const int cost[] = {IMax(tune.w_tail / fp_parts, 1), tune.w_tail, IMax(tune.w_sink / fp_parts, 1),
                      tune.w_mixed, 4};
#pragma unroll
  for (int k = 0; k <= UnitClasses::kN; ++k) u.bound[k] = bound[k];
#pragma unroll
  for (int k = 0; k < UnitClasses::kN; ++k) u.cost[k] = cost[k];
  return u;
}
// The units [c_begin, c_end) of one (item, kv head) by class; Offset(t) = the units of the range
// whose cost position lies before t (t in [0, wt]), i.e. a warp taking cost [t0, t1) of the range
// takes units [Offset(t0), Offset(t1)).
struct CostRange {
  int cnt[UnitClasses::kN], cost[UnitClasses::kN];
  int wt = 0;  // cost of the range
  __host__ __device__ CostRange(const UnitClasses& u, int c_begin, int c_end) {
#pragma unroll
    for (int k = 0; k < UnitClasses::kN; ++k) {
      cnt[k] = IMax(0, IMin(u.bound[k + 1], c_end) - IMax(u.bound[k], c_begin));
      cost[k] = u.cost[k];
      wt += cnt[k] * cost[k];
    }
  }
  __host__ __device__ int Offset(int t) const {
    int base = 0;
#pragma unroll
    for (int k = 0; k < UnitClasses::kN; ++k) {
      const int wk = cnt[k] * cost[k];
      if (t <= wk) return base + (t + cost[k] - 1) / cost[k];
      t -= wk;
      base += cnt[k];
    }
    return base;
  }
  // cost of the range's last unit
  __host__ __device__ int LastCost() const {
    int c = 0;
#pragma unroll
    for (int k = 0; k < UnitClasses::kN; ++k) c = cnt[k] > 0 ? cost[k] : c;
    return c;
  }
};

// One warp runs units [w_begin, w_end) (order L, UnitClasses) of one (item, kv head) into its
// online-softmax state w: pages staged by cp.async, double buffered (page L + 1 is staged while
// L is computed). q16 / qt: the item's q rows (kPack: rows h < g of head h; else columns).
// tail_lim: the causal limit of this lane's columns over the tail rows (query groups).
template <typename T, int D, bool kQuant, bool kSparse, int kUnroll, bool kPack, bool kParts>
__device__ __forceinline__ void RunUnits(
    typename AttnV2<T, D, kQuant, kSparse, kUnroll, kPack>::Warp& w, const KittyGeometry& geo,
    const KittyAttentionBatch& batch, const StageLayout& lay, const KittySeqDesc& seq,
    const KittyQueryItem& item, const ItemChunks& ch, const UnitClasses& u, int fp_parts, int kvh,
    const int (&tail_lim)[2], const __half* q16, const T* qt, float* sc, uint8_t* stages,
    uint8_t* inv, float sl2, int w_begin, int w_end) {
  using K = AttnV2<T, D, kQuant, kSparse, kUnroll, kPack>;
  const int n_tp = u.n_tp, n_t1 = u.n_t1, n_fpu = u.n_fpu;
  const auto [sink_k, sink_v, k_tail, v_tail, k_new, v_new, new_stride, k_ids, v_ids] =
      MakeSeqRows<T, D>(geo, batch, seq, item.new_offset, kvh);
  const int first_page_chunk = ch.n_sink;
  const int first_tail_chunk = ch.n_sink + ch.n_pair + ch.n_kv;

  // Stage sealed page `page` (>= 0; < n_pair: with its V page) by cp.async: its K head block and,
  // for a pair, its V head block. The page ids come in `id` (loaded a chunk ahead: their
  // global-load latency is off the critical path).
  const uint8_t* k_src = batch.pools.k_pages + static_cast<int64_t>(kvh) * geo.k_head_bytes;
  const uint8_t* v_src = batch.pools.v_pages + static_cast<int64_t>(kvh) * geo.v_head_bytes;
  auto issue = [&](int page, int2 id, uint8_t* stage) {
    if constexpr (kQuant) {
      if (page < 0) return;
      StageKHead<D>(w.lane, geo, lay, k_src + static_cast<int64_t>(id.x) * geo.k_page_bytes, stage);
      if (page < ch.n_pair) {
        StageVHead<D>(w.lane, geo, v_src + static_cast<int64_t>(id.y) * geo.v_page_bytes,
                      stage + lay.k_bytes);
      }
    }
  };

  // Page index of unit L >= n_fpu (pairs: L - n_fpu - n_kv; K-only pages: n_pair + L - n_fpu),
  // -1 for the full-precision units; without branches, as it runs twice per unit.
  auto page_of = [&](int L) {
    const int q = L - n_fpu - ch.n_kv;
    const int i = q >= 0 ? q : q + ch.n_kv + ch.n_pair;
    return L >= n_fpu ? i : -1;
  };
  auto fp_chunk_of = [&](int L) {  // chunk of a full-precision unit L < n_fpu
    if (L < n_tp) return first_tail_chunk;
    if (L < n_tp + n_t1) return first_tail_chunk + 1 + (L - n_tp);
    return 0;
  };
  auto part_of = [&](int L) {  // -1: the whole chunk
    if (L >= n_fpu) return -1;
    if (L < n_tp) return L;
    if (L >= n_tp + n_t1 && L < n_fpu) return L - n_tp - n_t1;
    return -1;
  };
  constexpr int kNoLim[2] = {kP, kP};
  // the page of unit L, -1 past the warp's range
  auto page_in_range = [&](int L) { return L < w_end ? page_of(L) : -1; };
  // page ids of page i (zeros for -1: full-precision units, past the range)
  auto ids_of = [&](int i) {
    int2 id = make_int2(0, 0);
    if constexpr (kQuant) {
      if (i >= 0) {
        id.x = k_ids[i];
        if (i < ch.n_pair) id.y = v_ids[i];
      }
    }
    return id;
  };
  // Double buffered: chunk L+1 (K and V) is staged while chunk L is computed.
  int it = 0;
  // pages of units L and L + 1, carried from one iteration to the next
  int page = page_in_range(w_begin), page_next = page_in_range(w_begin + 1);
  issue(page, ids_of(page), stages);
  if constexpr (kQuant) CpAsyncCommit();
  int2 next_id = ids_of(page_next);
  for (int L = w_begin; L < w_end; ++L, ++it) {
    const int page_after = page_in_range(L + 2);
    const int c = page >= 0 ? first_page_chunk + page : fp_chunk_of(L);
    uint8_t* stage = stages + (it & 1) * lay.stage;
    if constexpr (kQuant) {
      issue(page_next, next_id, stages + ((it + 1) & 1) * lay.stage);
      next_id = ids_of(page_after);
      CpAsyncCommit();
      CpAsyncWait<1>();
      __syncwarp();
    }
    // a part: tiles / k-steps [ib, ie); empty when no token t < n has t % 8 >= ib (skipped: a
    // warp's first unit must see a row, or its softmax max stays -inf)
    const int part = kParts ? part_of(L) : -1;
    const int ib = part < 0 ? 0 : 8 * part / fp_parts;
    const int ie = part < 0 ? 8 : 8 * (part + 1) / fp_parts;
    if (c < first_page_chunk) {  // sink
      const int n = seq.sink_tokens;
      if (n > ib) {
        float x[8][K::kNV];
        K::ScoresFp(
            w, qt, n, kNoLim, sl2, [&](int t) { return sink_k + t * D; }, x, ib, ie);
        K::Softmax(w, x, sc);
        K::PvFp(
            w, sc, n, [&](int t) { return sink_v + t * D; }, ib, ie);
      }
    } else if (c < first_tail_chunk) {
      const int i = c - first_page_chunk;
      float x[8][K::kNV];
      if constexpr (kQuant) {
        K::ScoresQuant(w, geo, stage, lay, q16, inv, sl2, x);
      } else {
        const T* kp = reinterpret_cast<const T*>(
                          batch.pools.k_pages + static_cast<int64_t>(k_ids[i]) * geo.k_page_bytes) +
                      static_cast<int64_t>(kvh) * kP * D;
        K::ScoresFp(
            w, qt, kP, kNoLim, sl2, [&](int t) { return kp + t * D; }, x);
      }
      K::Softmax(w, x, sc);
      if (i < ch.n_pair) {
        if constexpr (kQuant) {
          K::PvQuant(w, geo, stage + lay.k_bytes, sc);
        } else {
          const T* vp =
              reinterpret_cast<const T*>(batch.pools.v_pages +
                                         static_cast<int64_t>(v_ids[i]) * geo.v_page_bytes) +
              static_cast<int64_t>(kvh) * kP * D;
          K::PvFp(w, sc, kP, [&](int t) { return vp + t * D; });
        }
      } else {
        const T* vt = v_tail + static_cast<int64_t>(i - ch.n_pair) * kP * D;
        K::PvFp(w, sc, kP, [&](int t) { return vt + t * D; });
      }
    } else {  // tail rows: K tail then new tokens
      const int r0 = (c - first_tail_chunk) * kP;
      const int n = min(kP, ch.tail_rows - r0);
      const int ck = seq.k_tail_tokens;
      const T* vt = v_tail + static_cast<int64_t>(ch.n_kv) * kP * D;
      if (n > ib) {
        float x[8][K::kNV];
        int lim[2] = {kP, kP};
        if constexpr (!kPack) {
          lim[0] = tail_lim[0] - r0;
          lim[1] = tail_lim[1] - r0;
        }
        K::ScoresFp(
            w, qt, n, lim, sl2,
            [&](int t) {
              const int rr = r0 + t;
              return rr < ck ? k_tail + rr * D : k_new + (rr - ck) * new_stride;
            },
            x, ib, ie);
        K::Softmax(w, x, sc);
        K::PvFp(
            w, sc, n,
            [&](int t) {
              const int rr = r0 + t;
              return rr < ck ? vt + rr * D : v_new + (rr - ck) * new_stride;
            },
            ib, ie);
      }
    }
    page = page_next;
    page_next = page_after;
    __syncwarp();
  }
  if constexpr (kQuant) CpAsyncWait<0>();
}

// kParts: the sink and the first tail chunk in tune.fp_parts units (small batches); without
// it the fp_parts logic folds away and the kernel is the large-batch one as before.
template <typename T, int D, bool kQuant, bool kSparse, int kUnroll, bool kPack, int kStages,
          int kMinBlocks, bool kParts>
__global__ void __launch_bounds__(kWarps * 32, kMinBlocks)
    KittyAttentionKernelV2(KittyGeometry geo, KittyAttentionBatch batch, int chunks_per_split,
                           AttnTuning tune, float* __restrict__ ws,
                           const KittyQueryGroup* __restrict__ groups) {
  using K = AttnV2<T, D, kQuant, kSparse, kUnroll, kPack>;
  static_assert(kStages == 2, "double-buffered staging (RunUnits)");
  extern __shared__ __align__(16) uint8_t smem[];
  const StageLayout lay = MakeStageLayout(geo);
  const int warp = threadIdx.x / 32;
  const int split = blockIdx.x, kvh = blockIdx.y;
  const int hkv = geo.num_kv_heads, hq = geo.num_q_heads, g = hq / hkv;

  // q16 [8][D + kQPad] then qt [8][D + kQPad] (halves) = kQF floats
  constexpr int kQF = kG * (D + kQPad);
  float* qs = reinterpret_cast<float*>(smem);
  __half* q16 = reinterpret_cast<__half*>(qs);
  T* qt = reinterpret_cast<T*>(q16 + kQF);
  float* sc = qs + kQF + warp * (kG * kScStride);
  uint8_t* stage_base = reinterpret_cast<uint8_t*>(qs + kQF + kWarps * kG * kScStride);
  uint8_t* stages = stage_base + warp * (kQuant ? kStages * lay.stage : 0);
  uint8_t* inv = stage_base + (kQuant ? kWarps * kStages * lay.stage : 0) + warp * 128;

  // This CTA's query items: one, or a group of nt consecutive tokens of one prefill chunk whose
  // g heads each fill mma columns nt*g <= 8 (column h: item first + h / g, head h % g).
  // (kPack: never grouped; its code is kept exactly as for one item per CTA)
  int first = blockIdx.z, nt = 1;
  if constexpr (!kPack) {
    if (groups != nullptr) {
      const KittyQueryGroup gr = groups[blockIdx.z];
      first = gr.first_item;
      nt = gr.num_items;
    }
  }
  const int ncols = nt * g;
  const KittyQueryItem item = batch.items[first + nt - 1];  // the last sees the most new rows
  const int num_new0 = item.num_new - (nt - 1);
  const KittySeqDesc seq = batch.seqs[item.seq];
  // q rows as 16-byte vectors (8 channels of one column; the element-wise loads were ~5% of the
  // 64x8K kitty-pro time, ncu 2026-12-03). Column h: kPack head h (< g), else item first + h / g,
  // head h % g (< ncols); the others zero.
  {
    constexpr int kQV = D / 8;
    for (int v = threadIdx.x; v < kG * kQV; v += blockDim.x) {
      const int h = v / kQV, c = v % kQV;
      const bool ok = kPack ? h < g : h < ncols;
      const int64_t row = kPack ? static_cast<int64_t>(first) * hq + kvh * g + h
                                : static_cast<int64_t>(first + h / g) * hq + kvh * g + h % g;
      uint4 x = make_uint4(0u, 0u, 0u, 0u);
      if (ok) x = *reinterpret_cast<const uint4*>(static_cast<const T*>(batch.q) + row * D + 8 * c);
      StoreQ8<T>(x, qt, q16, h * (D + kQPad) + 8 * c);
    }
  }
  __syncthreads();

  typename K::Warp w;
  w.lane = threadIdx.x & 31;
  w.r = w.lane >> 2;
  w.c4 = w.lane & 3;
  for (int e = w.lane; e < kG * kScStride; e += 32) sc[e] = 0.0f;  // rows >= g stay p = 0
  K::Reset(w);

  const ItemChunks ch = CountChunks(seq, item);
  const int c_begin = split * chunks_per_split;
  // Units: the sink and the first tail chunk in fp_parts parts each, every other chunk whole.
  const int fp_parts = kParts ? tune.fp_parts : 1;
  const UnitClasses u = MakeUnitClasses(ch, tune, fp_parts);
  const int c_end = min(u.total, c_begin + chunks_per_split);
  const float sl2 = batch.scale * kLog2e;

  // Each warp takes a contiguous range of this split's units, balanced by their costs.
  int w_begin = c_begin, w_end = c_begin;
  if (c_end > c_begin) {
    const CostRange cr(u, c_begin, c_end);
    w_begin = c_begin + cr.Offset((warp * cr.wt + kWarps - 1) / kWarps);
    w_end = c_begin + cr.Offset(((warp + 1) * cr.wt + kWarps - 1) / kWarps);
  }
  // Causal limit of this lane's columns HeadBase + k over the tail rows (K tail, then new):
  // token j of a group sees new rows < num_new0 + j; columns past the group see everything.
  int tail_lim[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    const int h = K::HeadBase(w) + k;
    tail_lim[k] = h < ncols ? seq.k_tail_tokens + num_new0 + h / g : ch.tail_rows;
  }
  RunUnits<T, D, kQuant, kSparse, kUnroll, kPack, kParts>(w, geo, batch, lay, seq, item, ch, u,
                                                          fp_parts, kvh, tail_lim, q16, qt, sc,
                                                          stages, inv, sl2, w_begin, w_end);

  // ---- merge the warps -------------------------------------------------------------------
  __syncthreads();
  float* mo = qs + kQF;              // [warps][8][D]
  float* ml = mo + kWarps * kG * D;  // [warps][8][2]
  {
    float* o0 = mo + (warp * kG + 2 * w.c4) * D + K::kCpt * w.r;
    float* o1 = o0 + D;
#pragma unroll
    for (int e = 0; e < K::kCpt; ++e) {
      const int m = e % K::kMTiles, hi = e / K::kMTiles;
      const float f = TileF(m);
      o0[e] = fmaf(f, w.o[m][2 * hi], w.pm[0]);
      o1[e] = fmaf(f, w.o[m][2 * hi + 1], w.pm[1]);
    }
    K::ReduceL(w);
    if (w.r == 0) {  // heads 2c4, 2c4+1 (kPack: head c4)
#pragma unroll
      for (int j = 0; j < (kPack ? 1 : 2); ++j) {
        ml[(warp * kG + K::HeadBase(w) + j) * 2] = w.m[j];
        ml[(warp * kG + K::HeadBase(w) + j) * 2 + 1] = w.l[j];
      }
    }
  }
  __syncthreads();
  const int num_splits = gridDim.x;
  for (int e = threadIdx.x; e < ncols * D; e += blockDim.x) {
    const int h = e / D, d = e % D;
    float M = -INFINITY;
#pragma unroll
    for (int x = 0; x < kWarps; ++x) M = fmaxf(M, ml[(x * kG + h) * 2]);
    float L = 0.0f, O = 0.0f;
    if (M != -INFINITY) {
#pragma unroll
      for (int x = 0; x < kWarps; ++x) {
        const float f = exp2f(ml[(x * kG + h) * 2] - M);
        L += f * ml[(x * kG + h) * 2 + 1];
        O += f * mo[(x * kG + h) * D + d];
      }
    }
    const int64_t head = kPack ? static_cast<int64_t>(first) * hq + kvh * g + h
                               : static_cast<int64_t>(first + h / g) * hq + kvh * g + h % g;
    if (num_splits == 1) {
      static_cast<T*>(batch.out)[head * D + d] = FromF<T>(O / L);
    } else {
      float* wo = ws + (head * num_splits + split) * (D + 2);
      wo[2 + d] = O;
      if (d == 0) {
        wo[0] = M;
        wo[1] = L;
      }
    }
  }
}

// =====================================================================================
// Stream mode (decode batches that fill the GPU, Kitty pages, g <= 4; KittySplitPlan::
// stream_ctas): a fixed grid of 2 CTAs per SM whose warps each take one equal-cost piece of the
// batch. The (item, kv head) pairs ("segments", s = item * Hkv + kvh) are laid end to end
// in cost order (UnitClasses costs, fp_parts 1); piece c of nc holds the units whose cost
// position lies in [ceil(c C / nc), ceil((c + 1) C / nc)), C the total, so a unit starting at t
// belongs to piece floor(t nc / C). Warp c runs the units piece c holds of each segment it meets
// and writes the segment's output itself when the piece holds all of it, else a partial (m, l, o)
// to slot s + c, which the merge kernel combines with the other pieces' in piece order
// (deterministic). Against one CTA per segment: no CTA waits at the end for its slowest warp, no
// wave of CTAs is left part-empty (H200: docs/PERFORMANCE.md; more, smaller pieces taken from a
// queue were slower: each piece restarts the staging). nc is chosen so that every piece is at least
// the largest unit cost: then each piece between the first and the last owner of a segment holds at
// least one unit of it. Workspace: header (C, nc), Q[items + 1] (cost prefix over items: every kv
// head of an item costs the same), start[nc_max] (the item of each piece's first position), the
// partials.
// =====================================================================================
struct StreamWs {
  int* hdr;         // [0] C, [1] nc
  int* q_prefix;    // [items + 1]
  int* start_item;  // [nc_max]
  float* partials;  // [(items * Hkv + nc_max) * g][D + 4]: m, l, -, -, o[D]
};
__host__ __device__ inline size_t StreamIntsBytes(int items, int nw_max) {
  return sizeof(int) * (4 + RoundUp(items + 1, 4) + RoundUp(nw_max, 4));
}
__host__ __device__ inline StreamWs MakeStreamWs(void* ws, int items, int nw_max) {
  StreamWs s;
  s.hdr = static_cast<int*>(ws);
  s.q_prefix = s.hdr + 4;
  s.start_item = s.q_prefix + RoundUp(items + 1, 4);
  s.partials = reinterpret_cast<float*>(static_cast<uint8_t*>(ws) + StreamIntsBytes(items, nw_max));
  return s;
}
// Cost of one segment of item i (all its units, fp_parts 1), and its CostRange.
__device__ __forceinline__ CostRange StreamSegment(const KittyAttentionBatch& batch,
                                                   const AttnTuning& tune, int i,
                                                   KittyQueryItem* item_out = nullptr,
                                                   KittySeqDesc* seq_out = nullptr,
                                                   ItemChunks* ch_out = nullptr,
                                                   UnitClasses* u_out = nullptr) {
  const KittyQueryItem item = batch.items[i];
  const KittySeqDesc seq = batch.seqs[item.seq];
  const ItemChunks ch = CountChunks(seq, item);
  const UnitClasses u = MakeUnitClasses(ch, tune, 1);
  if (item_out) *item_out = item;
  if (seq_out) *seq_out = seq;
  if (ch_out) *ch_out = ch;
  if (u_out) *u_out = u;
  return CostRange(u, 0, u.total);
}
// Pieces of a batch of `segments` of total cost C: at most nw_max (the resident warps) and each
// at least the largest unit cost; with fewer segments than warps a whole number of pieces per
// segment, with more a whole number of segments per piece when that keeps >= 15/16 of the
// warps (uniform batches: no piece ends inside a segment, and a segment switch restarts the
// staging; H200 64x8K 162 -> 150 µs, 256x2K 229 -> see docs/PERFORMANCE.md).
__host__ __device__ inline int StreamPieces(int segments, int C, int max_cost, int nw_max) {
  int nw = IMax(1, IMin(nw_max, C / max_cost));
  if (segments <= 0) return nw;
  if (segments <= nw) return segments * (nw / segments);
  const int k = (segments + nw - 1) / nw;  // segments per piece
  if (segments % k == 0 && 16 * (segments / k) >= 15 * nw) nw = segments / k;
  return nw;
}
__host__ __device__ inline int StreamMaxCost(const AttnTuning& t) {
  return IMax(IMax(t.w_tail, t.w_sink), IMax(t.w_mixed, 4));
}
// The last item i with q_prefix[i] * hkv <= pos (the item of cost position pos).
__host__ __device__ inline int StreamItemAt(const int* q_prefix, int n, int hkv, long long pos) {
  int lo = 0, hi = n - 1;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (static_cast<long long>(q_prefix[mid]) * hkv <= pos) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}
__device__ __forceinline__ int StreamOwner(long long t, int C, int nw) {
  return static_cast<int>(t * nw / C);
}
__host__ __device__ inline long long StreamPos(int W, int C, int nw) {
  return (static_cast<long long>(W) * C + nw - 1) / nw;
}

// One CTA of 1024 threads: Q, C, nc and each piece's first item (KittyStreamPlanInts on the
// GPU, when the caller did not upload them).
__global__ void __launch_bounds__(1024)
    KittyStreamPlanKernel(KittyAttentionBatch batch, AttnTuning tune, int hkv, int nw_max,
                          StreamWs sw) {
  __shared__ int warp_sums[32];
  __shared__ int carry_s;
  const int tid = threadIdx.x, lane = tid & 31, wid = tid >> 5;
  const int n = batch.num_items;
  if (tid == 0) carry_s = 0;
  __syncthreads();
  for (int base = 0; base < n; base += 1024) {
    const int i = base + tid;
    int c = i < n ? StreamSegment(batch, tune, i).wt : 0;
#pragma unroll
    for (int d = 1; d < 32; d <<= 1) {
      const int y = __shfl_up_sync(0xffffffffu, c, d);
      if (lane >= d) c += y;
    }
    if (lane == 31) warp_sums[wid] = c;
    __syncthreads();
    if (wid == 0) {
      int x = warp_sums[lane];
#pragma unroll
      for (int d = 1; d < 32; d <<= 1) {
        const int y = __shfl_up_sync(0xffffffffu, x, d);
        if (lane >= d) x += y;
      }
      warp_sums[lane] = x;  // inclusive
    }
    __syncthreads();
    const int carry = carry_s;
    const int incl = carry + c + (wid > 0 ? warp_sums[wid - 1] : 0);
    if (i < n) sw.q_prefix[i + 1] = incl;
    __syncthreads();
    if (tid == 1023) carry_s = incl;
    __syncthreads();
  }
  if (tid == 0) sw.q_prefix[0] = 0;
  __syncthreads();  // the block's global writes are visible to the block
  const int C = sw.q_prefix[n] * hkv;
  const int nw = StreamPieces(n * hkv, C, StreamMaxCost(tune), nw_max);
  if (tid == 0) {
    sw.hdr[0] = C;
    sw.hdr[1] = nw;
  }
  for (int W = tid; W < nw; W += 1024)
    sw.start_item[W] = StreamItemAt(sw.q_prefix, n, hkv, StreamPos(W, C, nw));
}

template <typename T, int D, bool kSparse>
__global__ void __launch_bounds__(kWarps * 32, 2)
    KittyAttentionStreamKernel(KittyGeometry geo, KittyAttentionBatch batch, AttnTuning tune,
                               StreamWs sw) {
  using K = AttnV2<T, D, true, kSparse, 2, true>;
  extern __shared__ __align__(16) uint8_t smem[];
  const StageLayout lay = MakeStageLayout(geo);
  const int warp = threadIdx.x / 32;
  const int hkv = geo.num_kv_heads, hq = geo.num_q_heads, g = hq / hkv;
  // per warp: q16 [4][D + kQPad], qt [4][D + kQPad] (halves; kPack reads rows < g <= 4), then
  // the probability buffers, the stages and the rank maps of all warps
  constexpr int kQR = 4 * (D + kQPad);
  __half* q16 = reinterpret_cast<__half*>(smem) + warp * 2 * kQR;
  T* qt = reinterpret_cast<T*>(q16 + kQR);
  float* sc_base = reinterpret_cast<float*>(smem + sizeof(__half) * kWarps * 2 * kQR);
  float* sc = sc_base + warp * (kG * kScStride);
  uint8_t* stage_base = reinterpret_cast<uint8_t*>(sc_base + kWarps * kG * kScStride);
  uint8_t* stages = stage_base + warp * 2 * lay.stage;
  uint8_t* inv = stage_base + kWarps * 2 * lay.stage + warp * 128;

  const int C = sw.hdr[0], nw = sw.hdr[1];
  typename K::Warp w;
  w.lane = threadIdx.x & 31;
  w.r = w.lane >> 2;
  w.c4 = w.lane & 3;
  for (int e = w.lane; e < kG * kScStride; e += 32) sc[e] = 0.0f;  // rows >= 4 stay p = 0
  const float sl2 = batch.scale * kLog2e;
  constexpr int kNoLim[2] = {kP, kP};
  // The merge kernel may launch now: its CTAs wait for this grid before reading the partials.
  asm volatile("griddepcontrol.launch_dependents;");
  const int W = blockIdx.x * kWarps + warp;  // the piece
  if (W >= nw) return;                       // no block-wide synchronization in this kernel
  const long long pos_a = StreamPos(W, C, nw), pos_b = StreamPos(W + 1, C, nw);
  for (int i = sw.start_item[W]; i < batch.num_items; ++i) {
    const long long qi = static_cast<long long>(sw.q_prefix[i]) * hkv;
    if (qi >= pos_b) break;
    KittyQueryItem item;
    KittySeqDesc seq;
    ItemChunks ch;
    UnitClasses u;
    const CostRange cr = StreamSegment(batch, tune, i, &item, &seq, &ch, &u);
    const int kvh0 = static_cast<int>(max(0LL, pos_a - qi) / cr.wt);
    for (int kvh = kvh0; kvh < hkv; ++kvh) {
      const long long P = qi + static_cast<long long>(kvh) * cr.wt;
      if (P >= pos_b) break;
      const int u0 = cr.Offset(static_cast<int>(min(max(pos_a - P, 0LL), 1LL * cr.wt)));
      const int u1 = cr.Offset(static_cast<int>(min(max(pos_b - P, 0LL), 1LL * cr.wt)));
      if (u0 >= u1) continue;
      // q rows of heads h < g of this segment (16-byte vectors); rows g..3 zero
      constexpr int kQV = D / 8;
#pragma unroll
      for (int v = w.lane; v < 4 * kQV; v += 32) {
        const int h = v / kQV, c = v % kQV;
        uint4 x = make_uint4(0u, 0u, 0u, 0u);
        if (h < g) {
          const int64_t row = static_cast<int64_t>(i) * hq + kvh * g + h;
          x = *reinterpret_cast<const uint4*>(static_cast<const T*>(batch.q) + row * D + 8 * c);
        }
        StoreQ8<T>(x, qt, q16, h * (D + kQPad) + 8 * c);
      }
      __syncwarp();
      K::Reset(w);
      RunUnits<T, D, true, kSparse, 2, true, false>(w, geo, batch, lay, seq, item, ch, u, 1, kvh,
                                                    kNoLim, q16, qt, sc, stages, inv, sl2, u0, u1);
      // Lane (r, c4): heads 2 c4, 2 c4 + 1 (o columns), channels kCpt r + e; the max and the
      // sum of head h are in lanes c4 = h (kPack), the sums reduced over r.
      K::ReduceL(w);
      const int base = w.lane & ~3;
      float hm[2], hl[2];
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        hm[j] = __shfl_sync(0xffffffffu, w.m[0], base | ((2 * w.c4 + j) & 3));
        hl[j] = __shfl_sync(0xffffffffu, w.l[0], base | ((2 * w.c4 + j) & 3));
      }
      const bool whole = u0 == 0 && u1 == u.total;
      const int s = i * hkv + kvh;
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        const int h = 2 * w.c4 + j;
        if (h >= g) continue;
        float o[K::kCpt];
#pragma unroll
        for (int e = 0; e < K::kCpt; ++e) {
          const int m = e % K::kMTiles, hi = e / K::kMTiles;
          o[e] = fmaf(TileF(m), w.o[m][2 * hi + j], w.pm[j]);
        }
        const int64_t head = static_cast<int64_t>(i) * hq + kvh * g + h;
        if (whole) {
          const float inv_l = 1.0f / hl[j];
          uint32_t pk[K::kCpt / 2];
#pragma unroll
          for (int e = 0; e < K::kCpt / 2; ++e)
            pk[e] = PackT2<T>(o[2 * e] * inv_l, o[2 * e + 1] * inv_l);
          uint4* dst =
              reinterpret_cast<uint4*>(static_cast<T*>(batch.out) + head * D + K::kCpt * w.r);
#pragma unroll
          for (int x = 0; x < K::kCpt / 8; ++x)
            dst[x] = make_uint4(pk[4 * x], pk[4 * x + 1], pk[4 * x + 2], pk[4 * x + 3]);
        } else {
          float* row = sw.partials + (static_cast<int64_t>(s + W) * g + h) * (D + 4);
          if (w.r == 0) *reinterpret_cast<float2*>(row) = make_float2(hm[j], hl[j]);
          float4* dst = reinterpret_cast<float4*>(row + 4 + K::kCpt * w.r);
#pragma unroll
          for (int x = 0; x < K::kCpt / 4; ++x)
            dst[x] = make_float4(o[4 * x], o[4 * x + 1], o[4 * x + 2], o[4 * x + 3]);
        }
      }
      __syncwarp();  // q16 / qt are rewritten by the next segment
    }
  }
}

// Merges the partials of the segments that more than one warp held: grid (items, Hq), block D.
template <typename T, int D>
__global__ void KittyStreamMergeKernel(KittyGeometry geo, KittyAttentionBatch batch,
                                       AttnTuning tune, StreamWs sw) {
  const int i = blockIdx.x, hqi = blockIdx.y, d = threadIdx.x;
  const int hkv = geo.num_kv_heads, g = geo.num_q_heads / hkv;
  const int kvh = hqi / g, h = hqi % g;
  const int C = sw.hdr[0], nw = sw.hdr[1];
  const CostRange cr = StreamSegment(batch, tune, i);
  const long long P =
      static_cast<long long>(sw.q_prefix[i]) * hkv + static_cast<long long>(kvh) * cr.wt;
  const int w0 = StreamOwner(P, C, nw), w1 = StreamOwner(P + cr.wt - cr.LastCost(), C, nw);
  if (w0 == w1) return;                               // written by its warp
  asm volatile("griddepcontrol.wait;" ::: "memory");  // the partials (programmatic launch)
  const int s = i * hkv + kvh;
  auto row = [&](int W) { return sw.partials + (static_cast<int64_t>(s + W) * g + h) * (D + 4); };
  float M = -INFINITY;
  for (int W = w0; W <= w1; ++W) M = fmaxf(M, row(W)[0]);
  float L = 0.0f, O = 0.0f;
  for (int W = w0; W <= w1; ++W) {
    const float* r = row(W);
    if (r[0] == -INFINITY) continue;
    const float f = exp2f(r[0] - M);
    L += f * r[1];
    O += f * r[4 + d];
  }
  static_cast<T*>(batch.out)[(static_cast<int64_t>(i) * geo.num_q_heads + hqi) * D + d] =
      FromF<T>(O / L);
}

size_t AttnSmemBytes(const KittyGeometry& g, int num_stages = 2) {
  const StageLayout lay = MakeStageLayout(g);
  const size_t qf = kG * (g.head_dim + kQPad);
  const size_t base = sizeof(float) * (qf + kWarps * kG * kScStride);
  const size_t stages =
      (g.quantized ? size_t{kWarps} * num_stages * lay.stage : 0) + kWarps * 128;  // + V2 rank maps
  const size_t merge = sizeof(float) * (kWarps * kG * g.head_dim + kWarps * kG * 2);
  return std::max(base + stages, sizeof(float) * qf + merge);
}

size_t StreamSmemBytes(const KittyGeometry& g) {
  const StageLayout lay = MakeStageLayout(g);
  return sizeof(__half) * kWarps * 2 * 4 * (g.head_dim + kQPad) +
         sizeof(float) * kWarps * kG * kScStride + size_t{kWarps} * 2 * lay.stage + kWarps * 128;
}

// The V2 kernel's chunk costs (see AttnTuning; H200, docs/PERFORMANCE.md sixth pass). Quantized
// modes: a page pair is cheap (staged, 2-bit), a full-precision chunk is ~6 of them; auto: every
// chunk is full precision. A/B override, read once: KITTY_ATTN_WEIGHTS = "tail,sink,mixed".
AttnTuning AttnTuningFor(bool quantized) {
  static const AttnTuning env = [] {
    AttnTuning d{0, 0, 0, 1};
    if (const char* e = std::getenv("KITTY_ATTN_WEIGHTS")) {
      int a = 0, b = 0, c = 0;
      if (std::sscanf(e, "%d,%d,%d", &a, &b, &c) == 3 && a > 0 && b > 0 && c > 0) d = {a, b, c, 1};
    }
    return d;
  }();
  if (env.w_tail > 0) return env;
  return quantized ? AttnTuning{24, 8, 8, 1} : AttnTuning{12, 12, 4, 1};
}

// Stream mode's unit costs: AttnTuningFor(true) with whole sink / tail chunks.
AttnTuning StreamTuning() {
  AttnTuning t = AttnTuningFor(true);
  t.fp_parts = 1;
  return t;
}

// Stream mode (KittySplitPlan::stream_ctas): plan kernel, the warps, the merge of the partials.
template <typename T, int D, bool kSparse>
cudaError_t LaunchStream(const KittyGeometry& g, const KittyAttentionBatch& b,
                         const KittySplitPlan& plan, void* workspace, cudaStream_t stream) {
  constexpr auto kKernel = KittyAttentionStreamKernel<T, D, kSparse>;
  const size_t smem = StreamSmemBytes(g);
  cudaError_t err = AllowDynamicSmem<kKernel>(smem);
  if (err != cudaSuccess) return err;
  const int nw_max = plan.stream_ctas * kWarps;
  StreamWs sw = MakeStreamWs(workspace, b.num_items, nw_max);
  const AttnTuning tune = StreamTuning();
  if (plan.stream_plan != nullptr) {  // KittyStreamPlanInts, uploaded by the caller
    const StreamWs h = MakeStreamWs(const_cast<int32_t*>(plan.stream_plan), b.num_items, nw_max);
    sw.hdr = h.hdr;
    sw.q_prefix = h.q_prefix;
    sw.start_item = h.start_item;
  } else {
    KittyStreamPlanKernel<<<1, 1024, 0, stream>>>(b, tune, g.num_kv_heads, nw_max, sw);
  }
  kKernel<<<plan.stream_ctas, kWarps * 32, smem, stream>>>(g, b, tune, sw);
  err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  // programmatic dependent launch: the merge CTAs start as the stream CTAs leave the SMs
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(b.num_items, g.num_q_heads);
  cfg.blockDim = dim3(D);
  cfg.stream = stream;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  return cudaLaunchKernelEx(&cfg, KittyStreamMergeKernel<T, D>, g, b, tune, sw);
}

template <typename T, int D, bool kQuant, bool kSparse>
cudaError_t LaunchAttn(const KittyGeometry& g, const KittyAttentionBatch& b,
                       const KittySplitPlan& plan, void* workspace, cudaStream_t stream,
                       const KittyQueryGroups& gq) {
  // g <= 4 query heads per kv head: hi and lo of q*s share one mma (kPack)
  const bool pack =
      g.num_q_heads <= 4 * g.num_kv_heads && (gq.groups == nullptr || gq.max_group_items <= 1);
  constexpr auto kGrouped = KittyAttentionKernelV2<T, D, kQuant, kSparse, 2, false, 2, 2, false>;
  constexpr auto kPackParts = KittyAttentionKernelV2<T, D, kQuant, kSparse, 2, true, 2, 2, true>;
  constexpr auto kPackOne = KittyAttentionKernelV2<T, D, kQuant, kSparse, 2, true, 2, 2, false>;
  const int num_stages = 2;
  // the staging copies are unrolled for at most 2 D K planes (DB <= D) and 5 D idx + meta bytes
  if (kQuant && (g.k_idx_offset > 64 * D || g.k_head_bytes - g.k_idx_offset > 5 * D ||
                 g.v_meta_offset > 32 * D || g.v_head_bytes - g.v_meta_offset > 512)) {
    return cudaErrorInvalidValue;
  }
  if constexpr (kQuant) {
    if (plan.stream_ctas > 0 && pack && gq.groups == nullptr) {
      return LaunchStream<T, D, kSparse>(g, b, plan, workspace, stream);
    }
  }
  const size_t smem = AttnSmemBytes(g, num_stages);
  const bool parts = pack && plan.fp_parts > 1;
  auto kernel = !pack ? kGrouped : parts ? kPackParts : kPackOne;
  cudaError_t err = !pack   ? AllowDynamicSmem<kGrouped>(smem)
                    : parts ? AllowDynamicSmem<kPackParts>(smem)
                            : AllowDynamicSmem<kPackOne>(smem);
  if (err != cudaSuccess) return err;
  const dim3 grid(plan.num_splits, g.num_kv_heads, gq.groups ? gq.num_groups : b.num_items);
  AttnTuning tune = AttnTuningFor(kQuant);
  tune.fp_parts = plan.fp_parts;
  kernel<<<grid, kWarps * 32, smem, stream>>>(g, b, plan.chunks_per_split, tune,
                                              static_cast<float*>(workspace), gq.groups);
  err = cudaGetLastError();
  if (err != cudaSuccess || plan.num_splits == 1) return err;
  KittyMergeKernel<T, D><<<dim3(b.num_items, g.num_q_heads), D, 0, stream>>>(
      static_cast<const float*>(workspace), plan.num_splits, b.out);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t DispatchMode(const KittyGeometry& g, const KittyAttentionBatch& b,
                         const KittySplitPlan& plan, void* ws, cudaStream_t stream,
                         const KittyQueryGroups& gq) {
  if (!g.quantized) return LaunchAttn<T, D, false, false>(g, b, plan, ws, stream, gq);
  if (g.boost_channels == 0) return LaunchAttn<T, D, true, false>(g, b, plan, ws, stream, gq);
  return LaunchAttn<T, D, true, true>(g, b, plan, ws, stream, gq);
}

template <typename T>
cudaError_t DispatchHeadDim(const KittyGeometry& g, const KittyAttentionBatch& b,
                            const KittySplitPlan& plan, void* ws, cudaStream_t stream,
                            const KittyQueryGroups& gq) {
  switch (g.head_dim) {
    case 64:
      return DispatchMode<T, 64>(g, b, plan, ws, stream, gq);
    case 128:
      return DispatchMode<T, 128>(g, b, plan, ws, stream, gq);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

KittySplitPlan PlanKittyAttention(const KittyGeometry& g, int num_items, long long max_item_tokens,
                                  int num_sms) {
  KittySplitPlan p;
  const long long sms = std::max(num_sms, 1);
  const long long ctas_per_split =
      std::max(static_cast<long long>(num_items) * g.num_kv_heads, 1LL);
  // Units per split and splits for fp_parts `parts` and `per_sm` CTAs per SM aimed at (2 are
  // resident at a time), each split at least one unit per warp.
  struct Split {
    int chunks_per_split, num_splits;
  };
  auto split = [&](int parts, long long per_sm) {
    const long long max_chunks = KittyPlanUnits(max_item_tokens, parts);
    long long splits = (per_sm * sms + ctas_per_split - 1) / ctas_per_split;
    splits = std::max(1LL, std::min(splits, (max_chunks + kWarps - 1) / kWarps));
    const int cps = static_cast<int>((max_chunks + splits - 1) / splits);
    return Split{cps, static_cast<int>((max_chunks + cps - 1) / cps)};
  };
  // Defaults (H200 sweeps, docs/PERFORMANCE.md first section and sixth pass):
  // - the batch alone fills the SMs: whole sink / tail chunks; 2 CTAs per SM with Kitty pages
  //   (fewer splits to merge: -5% at 32-64x8K), else 4;
  // - fewer (item, kv head) pairs than SMs, mode auto: the sink and the first tail chunk in 4
  //   parts each, so that their rows spread over warps and CTAs, 4 CTAs per SM;
  // - the same with Kitty pages: 3 CTAs per SM and whole chunks (-7% to -14% at 16x4K-16x8K
  //   and 8x32K against the parts), unless that leaves at most 6 units per split (1x8K, 4x2K,
  //   1x32K, 4x8K: the warp with the sink or the tail then is the critical path; the parts at
  //   4 CTAs per SM are up to 30% faster there).
  // KITTY_ATTN_FP_PARTS (1, 2, 4, 8) and KITTY_ATTN_CTAS_PER_SM override (A/B).
  static const int parts_env = [] {  // 0: not set
    const char* e = std::getenv("KITTY_ATTN_FP_PARTS");
    const int v = e ? std::atoi(e) : 0;
    return v == 1 || v == 2 || v == 4 || v == 8 ? v : 0;
  }();
  static const long long per_sm_env = [] {  // 0: not set
    const char* e = std::getenv("KITTY_ATTN_CTAS_PER_SM");
    return std::max(e ? std::atoll(e) : 0LL, 0LL);
  }();
  int parts = 1;
  long long per_sm = g.quantized ? 2 : 4;
  if (ctas_per_split < sms) {
    parts = 4;
    per_sm = 4;
    if (g.quantized && split(1, 3).chunks_per_split > 6) {
      parts = 1;
      per_sm = 3;
    }
  }
  p.fp_parts = parts_env > 0 ? parts_env : parts;
  const Split s = split(p.fp_parts, per_sm_env > 0 ? per_sm_env : per_sm);
  p.chunks_per_split = s.chunks_per_split;
  p.num_splits = s.num_splits;
  p.workspace_bytes = p.num_splits == 1 ? 0
                                        : sizeof(float) * static_cast<size_t>(num_items) *
                                              g.num_q_heads * p.num_splits * (g.head_dim + 2);
  // Stream mode (KittyAttentionStreamKernel) for Kitty pages with g <= 4 from 64 (item, kv
  // head) pairs (H200: faster from 8x32K and 16x8K up, slower at 1x8K; docs/PERFORMANCE.md);
  // KITTY_ATTN_STREAM=0 / 1 turns it off / on at every batch size (A/B, tests).
  // The CTA plan above stays valid for the launches that cannot stream (query groups).
  static const int stream_env = [] {  // -1: not set
    const char* e = std::getenv("KITTY_ATTN_STREAM");
    return e == nullptr ? -1 : std::atoi(e) != 0 ? 1 : 0;
  }();
  const bool can_stream = g.quantized && g.num_q_heads <= 4 * g.num_kv_heads;
  if (can_stream && (stream_env >= 0 ? stream_env == 1 : ctas_per_split >= 64)) {
    p.stream_ctas = static_cast<int>(2 * sms);
    const int nw_max = p.stream_ctas * kWarps;
    const size_t partials = sizeof(float) *
                            (static_cast<size_t>(num_items) * g.num_kv_heads + nw_max) *
                            (g.num_q_heads / g.num_kv_heads) * (g.head_dim + 4);
    p.workspace_bytes = std::max(p.workspace_bytes, StreamIntsBytes(num_items, nw_max) + partials);
  }
  return p;
}

std::vector<int32_t> KittyStreamPlanInts(const KittySplitPlan& plan, int num_kv_heads,
                                         const KittyQueryItem* items, int num_items,
                                         const KittySeqDesc* seqs) {
  if (plan.stream_ctas <= 0 || num_items <= 0) return {};
  const int nw_max = plan.stream_ctas * kWarps;
  std::vector<int32_t> v(StreamIntsBytes(num_items, nw_max) / sizeof(int32_t), 0);
  const StreamWs sw = MakeStreamWs(v.data(), num_items, nw_max);
  const AttnTuning tune = StreamTuning();
  sw.q_prefix[0] = 0;
  for (int i = 0; i < num_items; ++i) {
    const ItemChunks ch = CountChunks(seqs[items[i].seq], items[i]);
    const UnitClasses u = MakeUnitClasses(ch, tune, 1);
    sw.q_prefix[i + 1] = sw.q_prefix[i] + CostRange(u, 0, u.total).wt;
  }
  const int C = sw.q_prefix[num_items] * num_kv_heads;
  const int nw = StreamPieces(num_items * num_kv_heads, C, StreamMaxCost(tune), nw_max);
  sw.hdr[0] = C;
  sw.hdr[1] = nw;
  for (int W = 0; W < nw; ++W)
    sw.start_item[W] = StreamItemAt(sw.q_prefix, num_items, num_kv_heads, StreamPos(W, C, nw));
  return v;
}

cudaError_t LaunchKittyAttention(const KittyGeometry& g, KittyElem elem,
                                 const KittyAttentionBatch& batch, const KittySplitPlan& plan,
                                 void* workspace, cudaStream_t stream,
                                 const KittyQueryGroups& groups) {
  if (batch.num_items == 0) return cudaSuccess;
  return elem == KittyElem::kBF16
             ? DispatchHeadDim<__nv_bfloat16>(g, batch, plan, workspace, stream, groups)
             : DispatchHeadDim<__half>(g, batch, plan, workspace, stream, groups);
}

}  // namespace kitty::kernels::cuda
