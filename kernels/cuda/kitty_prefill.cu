// File: kernels/cuda/kitty_prefill.cu
// -----------------------------------------------------------------------------
// Query-tiled Kitty attention for prefill chunks (FlashAttention-2 order). One CTA serves one
// tile of up to 64 / g consecutive tokens of one chunk (KittyQueryGroup) for one kv head: its
// 64 query rows (row R = token R / g, head R % g) are the mma rows, 16 per warp. The CTA walks
// the sequence's key blocks once (sink, sealed pages, then the K tail + the chunk's new rows,
// 128 keys each), stages each block in shared memory once for all four warps, and every warp
// keeps its rows' scores, online softmax and output in registers (S -> P as the A operand of
// P V, no shared-memory round trip). The decode kernel (kitty_attention.cu) serves one or a
// few tokens per CTA and re-reads the prefix for each; this one reads it once per 64 rows.
//
// Quantized pages are staged exactly as for the decode kernel (StageKHead / StageVHead) and
// their codes expanded in registers by the same one-LOP3 extraction (fp16 subnormals, scale and
// min folded out: score = sum_d (q_d s_d) c_td + sum_d q_d m_d; o_d = sum_t (p_t s_t) c_td +
// sum_t p_t m_t). The decode kernel's A fragments of codes are this kernel's B fragments:
//   S (rows = query rows, n = keys): n-tile 2i: key 16 n + i, n-tile 2i+1: key 16 n + 8 + i;
//     k-step ks: k (2c4, 2c4+1, 2c4+8, 2c4+9) -> channels 16 ks + 4 c4 + (0, 1, 2, 3)
//   P V (k = keys): k-step ks = S n-tiles 2ks, 2ks+1 -> keys 32 c4 + ks + (0, 16, 8, 24),
//     which is the decode kernel's V token order, so P needs no shuffle.
//   O (n = channels): tile j, column n -> channel (D/8) n + j, in units of 1 / TileF(j % (D/16)).
// Full-precision blocks (sink, tails, new rows, V tails, auto pages) are staged as rows of T:
// K in natural order (ldmatrix), V with its channels permuted (position 8 j + n holds channel
// (D/8) n + j) so that ldmatrix.trans yields the same O layout; a sealed K page whose V rows
// are still in the V tail takes those rows in the quantized key order (ldmatrix row addresses).
// Mode auto (no quantized V) keeps V rows in natural order, staged by cp.async like K, and its
// O tile j, column n is channel 8 j + n.
// Staging: a quantized K + V page pair fits in one of the two row buffers, so consecutive pairs
// alternate between them and page i + 1 is copied while page i is computed on; other blocks
// take both buffers and are copied between two barriers.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernels/cuda/kitty_attention_device.cuh"
#include "kernels/cuda/kitty_launch.h"
#include "kernels/cuda/smem_limit.h"

namespace kitty::kernels::cuda {
namespace {

using namespace attn;  // NOLINT(build/namespaces): this file's kernel is built from them

constexpr int kTW = 4;           // warps per CTA
constexpr int kRows = 16 * kTW;  // query rows per CTA (= kPrefillTileRows)
constexpr int kRowPad = 8;       // halves of padding per staged row: conflict-free ldmatrix

__device__ __forceinline__ void Ldsm4(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                      uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr)
               : "memory");
}
__device__ __forceinline__ void Ldsm4T(uint32_t addr, uint32_t& r0, uint32_t& r1, uint32_t& r2,
                                       uint32_t& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr)
               : "memory");
}

template <typename T, int D, bool kQuant, bool kSparse>
struct Prefill {
  static constexpr int kRS = D + kRowPad;  // halves per staged row
  static constexpr int kKSteps = D / 16;
  static constexpr int kOT = D / 8;   // O n-tiles
  static constexpr int kMT = D / 16;  // code tiles of one V word pair (Extract8 / Extract4)

  struct Warp {
    int lane, r, c4, row0;  // row0: the warp's first query row
    float m[2], l[2];       // rows r, r + 8: running max (log2 units), per-lane partial sum
    float o[kOT][4];        // sum p v (units 1 / TileF), rows r (0, 1) and r + 8 (2, 3)
    float pm[4];            // sum p m of quantized V (mma columns all equal; [0] r, [2] r + 8)
  };

  // ---- scores of a full-precision K block (natural key order: n-tile nt = keys 8 nt ..) ---
  static __device__ void ScoresFp(const Warp& w, const T* qt, const T* ks, float (&s)[16][4]) {
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
    const int l = w.lane;
    const uint32_t qa = Smem32(qt + (w.row0 + 8 * ((l >> 3) & 1) + (l & 7)) * kRS + 8 * (l >> 4));
    const uint32_t kb = Smem32(ks + (8 * (l >> 4) + (l & 7)) * kRS + 8 * ((l >> 3) & 1));
#pragma unroll 1  // fully unrolled, ptxas hoisted the fragment loads and spilled
    for (int k = 0; k < kKSteps; ++k) {
      uint32_t a0, a1, a2, a3;
      Ldsm4(qa + 32 * k, a0, a1, a2, a3);
#pragma unroll
      for (int nt = 0; nt < 16; nt += 2) {
        uint32_t b0, b1, b2, b3;  // n-tiles nt (b0, b1) and nt + 1 (b2, b3)
        Ldsm4(kb + (8 * nt * kRS + 16 * k) * 2, b0, b1, b2, b3);
        MmaT<T>(s[nt], a0, a1, a2, a3, b0, b1);
        MmaT<T>(s[nt + 1], a0, a1, a2, a3, b2, b3);
      }
    }
  }

  // ---- scores of a staged quantized K head block (key order of the file header) ----------
  // s = TileF(i) acc + q . min (not yet scaled to log2 units).
  static __device__ void ScoresQuant(const Warp& w, const KittyGeometry& geo, const uint8_t* ksm,
                                     const StageLayout& lay, const __half* q16, uint8_t* inv,
                                     float (&s)[16][4]) {
    const uint8_t* idx_s = ksm + lay.k_planes;
    const uint8_t* meta_s = idx_s + (geo.k_meta_offset - geo.k_idx_offset);
    float acc[16][4];
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
    float mq[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    int kw[4];
    KWordOffsets(w.r, w.c4, kw);
    const __half* qr0 = q16 + (w.row0 + w.r) * kRS;
    const __half* qr1 = qr0 + 8 * kRS;
    // B fragments of 8 key tiles from the code words of rows (4 c4 + j); A = q s as hi + lo
    // fp16 parts (two mma: ~22 bits of q s, as the decode kernel; fp16 alone cost up to 8e-3
    // rel-L2 where the q s c and q m terms cancel).
    auto step = [&](const uint32_t* wd, const uint32_t(&hi)[4], const uint32_t(&lo)[4]) {
      uint32_t t0[8], t1[8], t2[8], t3[8];
      ExtractWords<128>(wd, t0, t1, t2, t3);  // K words: 8 codes per half at every D
#pragma unroll
      for (int i = 0; i < 8; ++i) {
        Mma16816(acc[2 * i], hi[0], hi[1], hi[2], hi[3], t0[i], t2[i]);
        Mma16816(acc[2 * i], lo[0], lo[1], lo[2], lo[3], t0[i], t2[i]);
        Mma16816(acc[2 * i + 1], hi[0], hi[1], hi[2], hi[3], t1[i], t3[i]);
        Mma16816(acc[2 * i + 1], lo[0], lo[1], lo[2], lo[3], t1[i], t3[i]);
      }
    };
#pragma unroll 2
    for (int ks = 0; ks < kKSteps; ++ks) {
      const int ch = ks * 16 + 4 * w.c4;
      const KMeta4 mt = LoadKMeta4(meta_s, ch);
      const uint2 qa = *reinterpret_cast<const uint2*>(qr0 + ch);
      const uint2 qb = *reinterpret_cast<const uint2*>(qr1 + ch);
      uint32_t wd[4];
      LoadKWords(ksm, kw, 512 * ks, wd);
      const uint32_t hi[4] = {HMul2(qa.x, mt.s01), HMul2(qb.x, mt.s01), HMul2(qa.y, mt.s23),
                              HMul2(qb.y, mt.s23)};
      const uint32_t lo[4] = {HResid2(qa.x, mt.s01, hi[0]), HResid2(qb.x, mt.s01, hi[1]),
                              HResid2(qa.y, mt.s23, hi[2]), HResid2(qb.y, mt.s23, hi[3])};
      step(wd, hi, lo);
      Mma16816(mq, qa.x, qb.x, qa.y, qb.y, mt.m01, mt.m23);
    }
    if constexpr (kSparse) {
      const int db = geo.boost_channels;
      BuildRankMap<D>(w.lane, idx_s, db, inv);
      for (int k0 = 0; k0 < db; k0 += 16) {
        // A: 4 q s of the channel of ranks k0 + 4 c4 + (0, 1) [a0 row r, a1 row r+8], (2, 3)
        float v0[4], v1[4];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const int rk = k0 + 4 * w.c4 + j;
          v0[j] = v1[j] = 0.0f;
          if (rk < db) {
            const int c = inv[rk];
            const float sc = 4.0f * __half2float(*reinterpret_cast<const __half*>(meta_s + 4 * c));
            v0[j] = __half2float(qr0[c]) * sc;
            v1[j] = __half2float(qr1[c]) * sc;
          }
        }
        uint32_t wd[4];
        LoadKWords(ksm, kw, 32 * (D + k0), wd);
        // hi + lo fp16 parts of the fp32 products
        uint32_t hi[4], lo[4];
        const float* src[4] = {v0, v1, v0 + 2, v1 + 2};  // a0: row r, a1: r+8, a2, a3: ranks +2
#pragma unroll
        for (int k = 0; k < 4; ++k) {
          const __half2 h = __floats2half2_rn(src[k][0], src[k][1]);
          hi[k] = *reinterpret_cast<const uint32_t*>(&h);
          lo[k] = PackHalf2(src[k][0] - __low2float(h), src[k][1] - __high2float(h));
        }
        step(wd, hi, lo);
      }
      __syncwarp();  // inv is rewritten by the next page
    }
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) {
      const float f = TileF(nt >> 1);
      s[nt][0] = fmaf(acc[nt][0], f, mq[0]);
      s[nt][1] = fmaf(acc[nt][1], f, mq[0]);
      s[nt][2] = fmaf(acc[nt][2], f, mq[2]);
      s[nt][3] = fmaf(acc[nt][3], f, mq[2]);
    }
  }

  // ---- online softmax: s (log2 units, masked = -inf) -> p in place ------------------------
  static __device__ void Softmax(Warp& w, float (&s)[16][4]) {
    float mx[2] = {-INFINITY, -INFINITY};
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) {
      mx[0] = fmaxf(mx[0], fmaxf(s[nt][0], s[nt][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[nt][2], s[nt][3]));
    }
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 1));
      mx[h] = fmaxf(mx[h], __shfl_xor_sync(0xffffffffu, mx[h], 2));
    }
    float ref[2], alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      const float mn = fmaxf(w.m[h], mx[h]);
      ref[h] = mn == -INFINITY ? 0.0f : mn;  // a row with nothing visible yet: p = 0, not NaN
      alpha[h] = Exp2Ftz(w.m[h] - ref[h]);
      w.m[h] = mn;
      w.l[h] *= alpha[h];
    }
#pragma unroll
    for (int j = 0; j < kOT; ++j) {
      w.o[j][0] *= alpha[0];
      w.o[j][1] *= alpha[0];
      w.o[j][2] *= alpha[1];
      w.o[j][3] *= alpha[1];
    }
    w.pm[0] *= alpha[0];
    w.pm[1] *= alpha[0];
    w.pm[2] *= alpha[1];
    w.pm[3] *= alpha[1];
#pragma unroll
    for (int nt = 0; nt < 16; ++nt) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float p = Exp2Ftz(s[nt][e] - ref[e >> 1]);
        s[nt][e] = p;
        w.l[e >> 1] += p;
      }
    }
  }

  // ---- O += P V over a staged quantized V head block (P in the quantized key order) -------
  static __device__ void PvQuant(Warp& w, const KittyGeometry& geo, const uint8_t* vsm,
                                 const float (&p)[16][4]) {
    const uint8_t* meta_s = vsm + geo.v_meta_offset;
    const int vb = VWordBase(w.r, w.c4);
#pragma unroll  // p[2 ks] must stay in registers
    for (int ks = 0; ks < 8; ++ks) {
      uint32_t wd[4], meta[4];
      LoadVWords<D>(vsm, meta_s, ks, w.r, w.c4, vb, wd, meta);
      const uint32_t s01 = __byte_perm(meta[0], meta[1], 0x5410),
                     m01 = __byte_perm(meta[0], meta[1], 0x7632);
      const uint32_t s23 = __byte_perm(meta[2], meta[3], 0x5410),
                     m23 = __byte_perm(meta[2], meta[3], 0x7632);
      // A: p of rows r / r+8 at keys (t0, t0+16) [n-tile 2ks] and (t0+8, t0+24) [2ks+1]
      const uint32_t h0 = PackHalf2(p[2 * ks][0], p[2 * ks][1]);
      const uint32_t h1 = PackHalf2(p[2 * ks][2], p[2 * ks][3]);
      const uint32_t h2 = PackHalf2(p[2 * ks + 1][0], p[2 * ks + 1][1]);
      const uint32_t h3 = PackHalf2(p[2 * ks + 1][2], p[2 * ks + 1][3]);
      const uint32_t a0 = HMul2(h0, s01), a1 = HMul2(h1, s01), a2 = HMul2(h2, s23),
                     a3 = HMul2(h3, s23);
      uint32_t v0[kMT], v1[kMT], v2[kMT], v3[kMT];
      ExtractWords<D>(wd, v0, v1, v2, v3);
#pragma unroll
      for (int m = 0; m < kMT; ++m) {
        Mma16816(w.o[m], a0, a1, a2, a3, v0[m], v2[m]);
        Mma16816(w.o[kMT + m], a0, a1, a2, a3, v1[m], v3[m]);
      }
      Mma16816(w.pm, h0, h1, h2, h3, m01, m23);
    }
  }

  // ---- O += P V over a staged full-precision V block (channels permuted, see header) ------
  // kQuantOrder: P is in the quantized key order (a sealed K page with its V in the V tail).
  template <bool kQuantOrder>
  static __device__ void PvFp(Warp& w, const T* vs, const float (&p)[16][4]) {
    uint32_t a[8][4];
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      a[kk][0] = PackT2<T>(p[2 * kk][0], p[2 * kk][1]);
      a[kk][1] = PackT2<T>(p[2 * kk][2], p[2 * kk][3]);
      a[kk][2] = PackT2<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]);
      a[kk][3] = PackT2<T>(p[2 * kk + 1][2], p[2 * kk + 1][3]);
    }
    // ldmatrix row of this lane: matrix mi = lane / 8 (k half mi & 1, O tile j + mi / 2), row q
    const int mi = w.lane >> 3, q = w.lane & 7, krow = 8 * (mi & 1) + q;
    // key of k-row krow of k-step kk: natural 16 kk + krow; quantized order 32 (q / 2) + kk +
    // 16 (q & 1) + 8 (mi & 1)
    const int kbase = kQuantOrder ? 32 * (q >> 1) + 16 * (q & 1) + 8 * (mi & 1) : krow;
    const int kstep = kQuantOrder ? 1 : 16;
    const uint32_t vrow = Smem32(vs + kbase * kRS + 8 * (mi >> 1));
#pragma unroll
    for (int j = 0; j < kOT; j += 2) {
      float t0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, t1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) {
        uint32_t b0, b1, b2, b3;
        Ldsm4T(vrow + (kk * kstep * kRS + 8 * j) * 2, b0, b1, b2, b3);
        MmaT<T>(t0, a[kk][0], a[kk][1], a[kk][2], a[kk][3], b0, b1);
        MmaT<T>(t1, a[kk][0], a[kk][1], a[kk][2], a[kk][3], b2, b3);
      }
      const float i0 = 1.0f / TileF(j % kMT), i1 = 1.0f / TileF((j + 1) % kMT);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        w.o[j][e] = fmaf(t0[e], i0, w.o[j][e]);
        w.o[j + 1][e] = fmaf(t1[e], i1, w.o[j + 1][e]);
      }
    }
  }
};

// Full-precision K rows row(t), t < n, into ks[t][0, D) by cp.async (rows >= n untouched:
// their scores are masked).
template <int D, typename T, typename RowFn>
__device__ __forceinline__ void StageKRows(T* ks, int n, RowFn row) {
  constexpr int kRS = D + kRowPad, kC = D / 8, kStep = kTW * 32 / kC;  // rows per pass
  const int c = threadIdx.x % kC;
  for (int t = threadIdx.x / kC; t < n; t += kStep) CpAsync16(ks + t * kRS + 8 * c, row(t) + 8 * c);
}
// Full-precision V rows row(t) into vs[t]; rows n .. 127 zero (p = 0 must not meet a NaN).
// kPermute (a kernel that also reads quantized V pages): position 8 j + n <- channel (D/8) n + j,
// through registers, one row per thread (blockDim.x = 128); else natural order by cp.async.
template <int D, bool kPermute, typename T, typename RowFn>
__device__ __forceinline__ void StageVRows(T* vs, int n, RowFn row) {
  constexpr int kRS = D + kRowPad;
  if constexpr (!kPermute) {
    StageKRows<D>(vs, n, row);
    constexpr int kC = D / 8;
#pragma unroll 1
    for (int e = n * kC + threadIdx.x; e < kP * kC; e += blockDim.x)
      *reinterpret_cast<uint4*>(vs + (e / kC) * kRS + 8 * (e % kC)) = make_uint4(0u, 0u, 0u, 0u);
    return;
  }
  const int t = threadIdx.x;
  uint32_t x[D / 2];
  if (t < n) {
    const uint4* src = reinterpret_cast<const uint4*>(row(t));
#pragma unroll
    for (int c = 0; c < D / 8; ++c) {
      const uint4 u = src[c];
      x[4 * c] = u.x;
      x[4 * c + 1] = u.y;
      x[4 * c + 2] = u.z;
      x[4 * c + 3] = u.w;
    }
  } else {
#pragma unroll
    for (int c = 0; c < D / 2; ++c) x[c] = 0u;
  }
  uint4* dst = reinterpret_cast<uint4*>(vs + t * kRS);
#pragma unroll
  for (int j = 0; j < D / 8; ++j) {
    // channels (D/8) n + j, n = 0..7: D/8 is even, so all have the parity of j
    const uint32_t sel = (j & 1) ? 0x7632 : 0x5410;
    uint32_t y[4];
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      const int c0 = (D / 8) * (2 * k) + j, c1 = c0 + D / 8;
      y[k] = __byte_perm(x[c0 >> 1], x[c1 >> 1], sel);
    }
    dst[j] = make_uint4(y[0], y[1], y[2], y[3]);
  }
}

// Offset of the V head in a staged K + V page pair (one 128-byte aligned region each, so that
// the swizzled fragment loads stay bank-conflict free).
__host__ __device__ inline int PairVOffset(const StageLayout& lay) {
  return RoundUp(lay.k_bytes, 128);
}

template <typename T, int D, bool kQuant, bool kSparse>
__global__ void __launch_bounds__(kTW * 32, 2)
    KittyPrefillKernel(KittyGeometry geo, KittyAttentionBatch batch,
                       const KittyQueryGroup* __restrict__ tiles) {
  using K = Prefill<T, D, kQuant, kSparse>;
  constexpr int kRS = K::kRS;
  extern __shared__ __align__(16) uint8_t smem[];
  __half* q16 = reinterpret_cast<__half*>(smem);
  T* qt = reinterpret_cast<T*>(q16 + kRows * kRS);
  T* ks = qt + kRows * kRS;  // K block: rows of T, or a staged quantized head block (bytes)
  T* vs = ks + kP * kRS;     // V block: likewise
  uint8_t* inv = reinterpret_cast<uint8_t*>(vs + kP * kRS) + 128 * (threadIdx.x / 32);
  const StageLayout lay = MakeStageLayout(geo);

  const int warp = threadIdx.x / 32, kvh = blockIdx.y;
  const int hkv = geo.num_kv_heads, hq = geo.num_q_heads, g = hq / hkv;
  const KittyQueryGroup tile = tiles[blockIdx.x];
  const int first = tile.first_item, nt = tile.num_items, nrows = nt * g;
  const KittyQueryItem item = batch.items[first + nt - 1];  // the last sees the most new rows
  const int num_new0 = item.num_new - (nt - 1);
  const KittySeqDesc seq = batch.seqs[item.seq];

  // Q rows as 16-byte vectors, all of a thread's loads in flight at once (the element-wise
  // loop with a division by g per element was ~45% of a short-prefix chunk's time, ncu).
  {
    constexpr int kQV = D / 8, kIt = kRows * kQV / (kTW * 32);
    uint4 v[kIt];
#pragma unroll
    for (int it = 0; it < kIt; ++it) {
      const int e = threadIdx.x + it * kTW * 32, row = e / kQV, c = e % kQV;
      v[it] = make_uint4(0u, 0u, 0u, 0u);
      if (row < nrows) {
        const int tok = row / g;
        v[it] = *reinterpret_cast<const uint4*>(
            static_cast<const T*>(batch.q) +
            (static_cast<int64_t>(first + tok) * hq + kvh * g + (row - tok * g)) * D + 8 * c);
      }
    }
#pragma unroll
    for (int it = 0; it < kIt; ++it) {
      const int e = threadIdx.x + it * kTW * 32, row = e / kQV, c = e % kQV;
      *reinterpret_cast<uint4*>(qt + row * kRS + 8 * c) = v[it];
      const T* x = reinterpret_cast<const T*>(&v[it]);
      uint32_t h[4];
#pragma unroll
      for (int k = 0; k < 4; ++k) h[k] = PackHalf2(ToF(x[2 * k]), ToF(x[2 * k + 1]));
      *reinterpret_cast<uint4*>(q16 + row * kRS + 8 * c) = make_uint4(h[0], h[1], h[2], h[3]);
    }
  }

  typename K::Warp w;
  w.lane = threadIdx.x & 31;
  w.r = w.lane >> 2;
  w.c4 = w.lane & 3;
  w.row0 = 16 * warp;
  w.m[0] = w.m[1] = -INFINITY;
  w.l[0] = w.l[1] = 0.0f;
#pragma unroll
  for (int j = 0; j < K::kOT; ++j) w.o[j][0] = w.o[j][1] = w.o[j][2] = w.o[j][3] = 0.0f;
#pragma unroll
  for (int k = 0; k < 4; ++k) w.pm[k] = 0.0f;
  const bool active = w.row0 < nrows;
  // Rows of the tail region (K tail, then the chunk's new rows) that rows r and r+8 see.
  int lim[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = w.row0 + w.r + 8 * h;
    lim[h] = row < nrows ? seq.k_tail_tokens + num_new0 + row / g : 0;
  }

  const auto [sink_k, sink_v, k_tail, v_tail, k_new, v_new, new_stride, k_ids, v_ids] =
      MakeSeqRows<T, D>(geo, batch, seq, item.new_offset, kvh);
  const int n_sink = seq.sink_tokens > 0 ? 1 : 0;
  const int n_pages = seq.num_k_pages, n_kv = seq.num_k_pages - seq.num_v_pages;
  const int ck = seq.k_tail_tokens, tail_rows = ck + item.num_new;
  const int n_blocks = n_sink + n_pages + (tail_rows + kP - 1) / kP;
  const T* vt_tail = v_tail + static_cast<int64_t>(n_kv) * kP * D;  // V rows of the K tail
  const float sl2 = batch.scale * kLog2e;

  // Block b: the sink (b < n_sink), page b - n_sink, or tail rows from r0 = (b - n_sink -
  // n_pages) * kP. A page whose V is sealed too (a pair) is staged whole (K head, then V head)
  // in one of two regions, ks for even and vs for odd pages, so that page i + 1 is staged
  // while page i is computed on; full-precision blocks and sealed K pages with V tail rows
  // take both regions (K rows at ks, V rows at vs) and are staged after a barrier.
  auto region = [&](int i) { return reinterpret_cast<uint8_t*>((i & 1) ? vs : ks); };
  auto is_pair = [&](int b) {
    return kQuant && b >= n_sink && b - n_sink < seq.num_v_pages;  // pages [0, num_v) pair
  };
  auto stage = [&](int b) {
    const bool is_page = b >= n_sink && b < n_sink + n_pages;
    const int i = b - n_sink;
    if (b < n_sink) {
      StageKRows<D>(ks, seq.sink_tokens, [&](int t) { return sink_k + t * D; });
      StageVRows<D, kQuant>(vs, seq.sink_tokens, [&](int t) { return sink_v + t * D; });
    } else if (is_page) {
      const bool pair = i < seq.num_v_pages;
      if constexpr (kQuant) {
        uint8_t* kdst = pair ? region(i) : reinterpret_cast<uint8_t*>(ks);
        if (warp == 0) {
          StageKHead<D>(w.lane, geo, lay,
                        batch.pools.k_pages + static_cast<int64_t>(k_ids[i]) * geo.k_page_bytes +
                            static_cast<int64_t>(kvh) * geo.k_head_bytes,
                        kdst);
        } else if (warp == 1 && pair) {
          StageVHead<D>(w.lane, geo,
                        batch.pools.v_pages + static_cast<int64_t>(v_ids[i]) * geo.v_page_bytes +
                            static_cast<int64_t>(kvh) * geo.v_head_bytes,
                        kdst + PairVOffset(lay));
        }
      } else {
        const T* kp = reinterpret_cast<const T*>(
                          batch.pools.k_pages + static_cast<int64_t>(k_ids[i]) * geo.k_page_bytes) +
                      static_cast<int64_t>(kvh) * kP * D;
        StageKRows<D>(ks, kP, [&](int t) { return kp + t * D; });
        if (pair) {
          const T* vp =
              reinterpret_cast<const T*>(batch.pools.v_pages +
                                         static_cast<int64_t>(v_ids[i]) * geo.v_page_bytes) +
              static_cast<int64_t>(kvh) * kP * D;
          StageVRows<D, kQuant>(vs, kP, [&](int t) { return vp + t * D; });
        }
      }
      if (!pair) {
        const T* vt = v_tail + static_cast<int64_t>(i - seq.num_v_pages) * kP * D;
        StageVRows<D, kQuant>(vs, kP, [&](int t) { return vt + t * D; });
      }
    } else {
      const int r0 = (b - n_sink - n_pages) * kP;
      StageKRows<D>(ks, min(kP, tail_rows - r0), [&](int t) {
        const int rr = r0 + t;
        return rr < ck ? k_tail + rr * D : k_new + (rr - ck) * new_stride;
      });
      StageVRows<D, kQuant>(vs, min(kP, tail_rows - r0), [&](int t) {
        const int rr = r0 + t;
        return rr < ck ? vt_tail + rr * D : v_new + (rr - ck) * new_stride;
      });
    }
    CpAsyncCommit();
  };

  if (n_blocks > 0) stage(0);
  for (int b = 0; b < n_blocks; ++b) {
    CpAsyncWait<0>();
    __syncthreads();  // block b is staged; every warp is done with block b - 1
    const bool ahead = b + 1 < n_blocks && is_pair(b) && is_pair(b + 1);
    if (ahead) stage(b + 1);  // into the other region, during the compute on block b

    const bool is_page = b >= n_sink && b < n_sink + n_pages;
    const int i = b - n_sink;                          // page index
    const bool pair = is_page && i < seq.num_v_pages;  // V of the page is sealed too
    const int r0 = (b - n_sink - n_pages) * kP;        // tail block: first tail row
    const int n = b < n_sink ? seq.sink_tokens : is_page ? kP : min(kP, tail_rows - r0);
    if (active) {
      float s[16][4];
      bool quant_k = false;
      if constexpr (kQuant) quant_k = is_page;
      if (quant_k) {
        if constexpr (kQuant) {
          const uint8_t* kq = pair ? region(i) : reinterpret_cast<const uint8_t*>(ks);
          K::ScoresQuant(w, geo, kq, lay, q16, inv, s);
#pragma unroll
          for (int nt2 = 0; nt2 < 16; ++nt2)
#pragma unroll
            for (int e = 0; e < 4; ++e) s[nt2][e] *= sl2;
        }
      } else {
        K::ScoresFp(w, qt, ks, s);
        // natural key order: key of s[nt][e] = 8 nt + 2 c4 + (e & 1); tail rows are causal
        const bool tail = b >= n_sink + n_pages;
#pragma unroll
        for (int nt2 = 0; nt2 < 16; ++nt2) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = 8 * nt2 + 2 * w.c4 + (e & 1);
            const bool ok = key < n && (!tail || r0 + key < lim[e >> 1]);
            s[nt2][e] = ok ? s[nt2][e] * sl2 : -INFINITY;
          }
        }
      }
      K::Softmax(w, s);
      if (quant_k) {
        if constexpr (kQuant) {
          if (pair) {
            K::PvQuant(w, geo, region(i) + PairVOffset(lay), s);
          } else {
            K::template PvFp<true>(w, vs, s);
          }
        }
      } else {
        K::template PvFp<false>(w, vs, s);
      }
    }
    if (!ahead && b + 1 < n_blocks) {
      __syncthreads();  // block b + 1 overwrites what block b read
      stage(b + 1);
    }
  }

  if (!active) return;
    // ---- O = (TileF o + pm) / l per row ----
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 1);
    w.l[h] += __shfl_xor_sync(0xffffffffu, w.l[h], 2);
  }
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int row = w.row0 + w.r + 8 * h;
    if (row >= nrows) continue;
    const float inv_l = 1.0f / w.l[h];
    T* out = static_cast<T*>(batch.out) +
             (static_cast<int64_t>(first + row / g) * hq + kvh * g + row % g) * D;
#pragma unroll
    for (int j = 0; j < K::kOT; ++j) {
      const float f = TileF(j % K::kMT);
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        // O tile j, column n: channel (D/8) n + j (permuted V rows, quantized V), else 8 j + n
        const int c = kQuant ? (D / 8) * (2 * w.c4 + e) + j : 8 * j + 2 * w.c4 + e;
        out[c] = FromF<T>(fmaf(f, w.o[j][2 * h + e], w.pm[2 * h]) * inv_l);
      }
    }
  }
}

size_t PrefillSmemBytes(int head_dim) {
  const size_t rs = head_dim + kRowPad;
  return 2 * (2 * kRows * rs + 2 * kP * rs) + kTW * 128;
}

template <typename T, int D, bool kQuant, bool kSparse>
cudaError_t LaunchPrefill(const KittyGeometry& g, const KittyAttentionBatch& b,
                          const KittyQueryGroups& tiles, cudaStream_t stream) {
  const StageLayout lay = MakeStageLayout(g);
  const size_t block = sizeof(T) * kP * (D + kRowPad);
  if (kQuant && (g.k_idx_offset > 64 * D || g.k_head_bytes - g.k_idx_offset > 5 * D ||
                 static_cast<size_t>(PairVOffset(lay) + lay.v_bytes) > block)) {
    return cudaErrorInvalidValue;
  }
  constexpr auto kernel = KittyPrefillKernel<T, D, kQuant, kSparse>;
  const size_t smem = PrefillSmemBytes(D);
  const cudaError_t err = AllowDynamicSmem<kernel>(smem);
  if (err != cudaSuccess) return err;
  kernel<<<dim3(tiles.num_groups, g.num_kv_heads), kTW * 32, smem, stream>>>(g, b, tiles.groups);
  return cudaGetLastError();
}

template <typename T, int D>
cudaError_t PrefillMode(const KittyGeometry& g, const KittyAttentionBatch& b,
                        const KittyQueryGroups& tiles, cudaStream_t stream) {
  if (!g.quantized) return LaunchPrefill<T, D, false, false>(g, b, tiles, stream);
  if (g.boost_channels == 0) return LaunchPrefill<T, D, true, false>(g, b, tiles, stream);
  return LaunchPrefill<T, D, true, true>(g, b, tiles, stream);
}

template <typename T>
cudaError_t PrefillHeadDim(const KittyGeometry& g, const KittyAttentionBatch& b,
                           const KittyQueryGroups& tiles, cudaStream_t stream) {
  switch (g.head_dim) {
    case 64:
      return PrefillMode<T, 64>(g, b, tiles, stream);
    case 128:
      return PrefillMode<T, 128>(g, b, tiles, stream);
    default:
      return cudaErrorInvalidValue;
  }
}

}  // namespace

cudaError_t LaunchKittyPrefillAttention(const KittyGeometry& g, KittyElem elem,
                                        const KittyAttentionBatch& batch,
                                        const KittyQueryGroups& tiles, cudaStream_t stream) {
  if (tiles.num_groups == 0) return cudaSuccess;
  return elem == KittyElem::kBF16 ? PrefillHeadDim<__nv_bfloat16>(g, batch, tiles, stream)
                                  : PrefillHeadDim<__half>(g, batch, tiles, stream);
}

}  // namespace kitty::kernels::cuda
