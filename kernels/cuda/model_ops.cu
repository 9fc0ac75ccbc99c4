// File: kernels/cuda/model_ops.cu
// -----------------------------------------------------------------------------
// Kernels and launchers of model_ops.h. Simple, memory-bound kernels; the heavy work of a step
// is in the cuBLAS GEMMs and the Kitty attention.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/device_convert.cuh"
#include "kernels/cuda/model_ops.h"

namespace kitty::kernels::cuda {
namespace {

constexpr int kP = 128;  // tokens per page

template <typename F>
cudaError_t DispatchElem(ModelElem elem, F&& f) {
  if (elem == ModelElem::kF16) return f(__half{});
  return f(__nv_bfloat16{});
}

__device__ __forceinline__ float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets the result.
__device__ float BlockSum(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = WarpSum(v);
  __syncthreads();  // part[] may still be read by a previous call
  if (lane == 0) part[warp] = v;
  __syncthreads();
  const int nw = blockDim.x >> 5;
  float t = lane < nw ? part[lane] : 0.0f;
  return WarpSum(t);
}

cudaError_t LastError() { return cudaGetLastError(); }

// ---- embedding, norms, rope, epilogues -------------------------------------------------------

template <typename T>
__global__ void EmbeddingKernel(const T* __restrict__ table, const int32_t* __restrict__ ids,
                                int dim, float* __restrict__ x) {
  const int64_t r = blockIdx.x;
  const T* src = table + static_cast<int64_t>(ids[r]) * dim;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) x[r * dim + i] = ToF(src[i]);
}

template <typename T>
__global__ void RmsNormKernel(float* x, const float* __restrict__ residual,
                              const int32_t* __restrict__ row_index,
                              const float* __restrict__ weight, int dim, float eps,
                              T* __restrict__ out) {
  const int64_t r = blockIdx.x;
  const int64_t s = row_index != nullptr ? row_index[r] : r;
  float* xr = x + s * dim;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    float v = xr[i];
    if (residual != nullptr) {
      v += residual[s * dim + i];
      xr[i] = v;
    }
    ss += v * v;
  }
  ss = BlockSum(ss);
  const float inv = 1.0f / sqrtf(ss / static_cast<float>(dim) + eps);
  for (int i = threadIdx.x; i < dim; i += blockDim.x) {
    out[r * dim + i] = FromF<T>((xr[i] * inv) * weight[i]);
  }
}

__global__ void RopeTableKernel(const float* __restrict__ inv_freq,
                                const int32_t* __restrict__ positions, int rows, int half,
                                float* __restrict__ cos_sin) {
  const int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<int64_t>(rows) * half) return;
  const int64_t r = e / half;
  const int i = static_cast<int>(e % half);
  const float angle = static_cast<float>(positions[r]) * inv_freq[i];
  cos_sin[r * 2 * half + i] = static_cast<float>(cos(static_cast<double>(angle)));
  cos_sin[r * 2 * half + half + i] = static_cast<float>(sin(static_cast<double>(angle)));
}

template <typename T>
__global__ void QkvEpilogueKernel(const float* __restrict__ qkv, const float* __restrict__ bias,
                                  const float* __restrict__ q_norm,
                                  const float* __restrict__ k_norm, float eps,
                                  const float* __restrict__ cos_sin, int hq, int hkv, int D,
                                  T* __restrict__ q, T* __restrict__ k, T* __restrict__ v) {
  const int64_t r = blockIdx.x;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int heads = hq + 2 * hkv, half = D / 2;
  const float* row = qkv + r * heads * D;
  const float* cs = cos_sin + r * D;  // [half] cos then [half] sin
  // One warp per head: blockIdx.y picks the CTA's nwarps heads (a loop of one iteration).
  const int head_end = min(heads, static_cast<int>(blockIdx.y + 1) * nwarps);
  for (int head = blockIdx.y * nwarps + warp; head < head_end; head += nwarps) {
    const float* src = row + head * D;
    const float* b = bias != nullptr ? bias + head * D : nullptr;
    T* dst;
    const float* nw;
    if (head < hq) {
      dst = q + (r * hq + head) * D;
      nw = q_norm;
    } else if (head < hq + hkv) {
      dst = k + (r * hkv + head - hq) * D;
      nw = k_norm;
    } else {
      dst = v + (r * hkv + head - hq - hkv) * D;
      for (int d = lane; d < D; d += 32) dst[d] = FromF<T>(src[d] + (b ? b[d] : 0.0f));
      continue;
    }
    float inv = 1.0f;
    if (nw != nullptr) {
      float ss = 0.0f;
      for (int d = lane; d < D; d += 32) {
        const float x = src[d] + (b ? b[d] : 0.0f);
        ss += x * x;
      }
      ss = WarpSum(ss);
      inv = 1.0f / sqrtf(ss / static_cast<float>(D) + eps);
    }
    for (int p = lane; p < half; p += 32) {
      float a = src[p] + (b ? b[p] : 0.0f);
      float c = src[p + half] + (b ? b[p + half] : 0.0f);
      if (nw != nullptr) {
        a = (a * inv) * nw[p];
        c = (c * inv) * nw[p + half];
      }
      const float co = cs[p], si = cs[half + p];
      dst[p] = FromF<T>(a * co - c * si);
      dst[p + half] = FromF<T>(c * co + a * si);
    }
  }
}

template <typename T>
__global__ void SiluMulKernel(const T* __restrict__ gate_up, int64_t rows, int inter,
                              T* __restrict__ out) {
  const int64_t n = rows * inter;
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < n;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t r = e / inter;
    const int i = static_cast<int>(e % inter);
    const float g = ToF(gate_up[r * 2 * inter + i]);
    const float u = ToF(gate_up[r * 2 * inter + inter + i]);
    out[e] = FromF<T>(g / (1.0f + expf(-g)) * u);
  }
}

// ---- KV append copies --------------------------------------------------------------------------

// Block b of a launch copies rows [32 (b - block0), +32) of the segment with the largest
// block0 <= b (binary search: the segments are in block order), for kv head blockIdx.y; 16-byte
// vectors when the rows allow it.
__global__ void KvCopyKernel(const KvCopySegment* __restrict__ segs, int num_segs, int layer,
                             int D) {
  int lo = 0, hi = num_segs - 1;
  const int b = blockIdx.x;
  while (lo < hi) {
    const int mid = (lo + hi + 1) / 2;
    if (segs[mid].block0 <= b) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const KvCopySegment s = segs[lo];
  const int h = blockIdx.y;
  const int r0 = (b - s.block0) * kKvCopyRowsPerBlock;
  const int nr = min(kKvCopyRowsPerBlock, s.rows - r0);
  const uint16_t* src =
      static_cast<const uint16_t*>(s.src) + layer * s.src_layer_stride + h * s.src_head_stride;
  uint16_t* dst =
      static_cast<uint16_t*>(s.dst) + layer * s.dst_layer_stride + h * s.dst_head_stride;
  const uint64_t align = reinterpret_cast<uintptr_t>(src) | reinterpret_cast<uintptr_t>(dst) |
                         static_cast<uint64_t>(2 * s.src_token_stride) |
                         static_cast<uint64_t>(2 * s.dst_token_stride) | (2u * D);
  if ((align & 15) == 0) {
    const int vpr = D / 8;  // 16-byte vectors per row
    for (int e = threadIdx.x; e < nr * vpr; e += blockDim.x) {
      const int t = r0 + e / vpr, x = e % vpr;
      reinterpret_cast<uint4*>(dst + t * s.dst_token_stride)[x] =
          reinterpret_cast<const uint4*>(src + t * s.src_token_stride)[x];
    }
  } else {
    for (int e = threadIdx.x; e < nr * D; e += blockDim.x) {
      const int t = r0 + e / D, d = e % D;
      dst[t * s.dst_token_stride + d] = src[t * s.src_token_stride + d];
    }
  }
}

// ---- generic pack
// --------------------------------------------------------------------------------

__device__ __forceinline__ uint16_t HalfBits(float x) {
  return __half_as_ushort(__float2half_rn(x));
}
// (scale, min) as two little-endian fp16 values; the meta offsets are 4-byte aligned.
__device__ __forceinline__ void StoreMeta(uint8_t* p, float scale, float mn) {
  *reinterpret_cast<uint32_t*>(p) =
      static_cast<uint32_t>(HalfBits(scale)) | (static_cast<uint32_t>(HalfBits(mn)) << 16);
}
__device__ __forceinline__ float LoadHalfBytes(const uint8_t* p) {
  const uint16_t b = static_cast<uint16_t>(p[0] | (p[1] << 8));
  return __half2float(__ushort_as_half(b));
}
// kernels/kitty DequantCode: the product and the sum each rounded to fp16.
__device__ __forceinline__ float DequantCode(int q, float scale16, float min16) {
  const float prod = __half2float(__float2half_rn(static_cast<float>(q) * scale16));
  return __half2float(__float2half_rn(prod + min16));
}
__device__ __forceinline__ int QuantCode(float x, float mn, float scale, int levels) {
  const float q = floorf(__fadd_rn(__fdiv_rn(__fsub_rn(x, mn), scale), 0.5f));
  return static_cast<int>(fminf(fmaxf(q, 0.0f), static_cast<float>(levels)));
}

template <typename T>
__device__ void CopyAutoPage(const KittyGeometry& g, const KittyPackJob& job, int h) {
  const int D = g.head_dim;
  const T* src = static_cast<const T*>(job.src) + h * job.head_stride;
  T* out = static_cast<T*>(job.dst) + static_cast<int64_t>(h) * kP * D;
  for (int e = threadIdx.x; e < kP * D; e += blockDim.x) {
    out[e] = src[(e / D) * job.token_stride + e % D];
  }
}

template <typename T>
__global__ void GenericPackKKernel(KittyGeometry g, const KittyPackJob* __restrict__ jobs) {
  const KittyPackJob job = jobs[blockIdx.x];
  const int h = blockIdx.y;
  if (!g.quantized) {
    CopyAutoPage<T>(g, job, h);
    return;
  }
  const int D = g.head_dim, DB = g.boost_channels;
  const T* src = static_cast<const T*>(job.src) + h * job.head_stride;
  const int64_t ts = job.token_stride;
  uint8_t* dst = static_cast<uint8_t*>(job.dst) + static_cast<int64_t>(h) * g.k_head_bytes;
  __shared__ float scores[256];
  __shared__ uint8_t idx[256];
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float s = 0.0f;
    for (int t = 0; t < kP; ++t) s += fabsf(ToF(src[t * ts + d]));
    scores[d] = s / static_cast<float>(kP);
    idx[d] = static_cast<uint8_t>(DB);
  }
  __syncthreads();
  if (threadIdx.x == 0) {  // top-DB by score, ties to the lower channel (stable sort order)
    for (int r = 0; r < DB; ++r) {
      int best = -1;
      for (int d = 0; d < D; ++d) {
        if (idx[d] != DB) continue;
        if (best < 0 || scores[d] > scores[best]) best = d;
      }
      idx[best] = static_cast<uint8_t>(r);
    }
  }
  __syncthreads();
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    const bool boosted = idx[d] < DB;
    const int levels = boosted ? 15 : 3;
    float mx = ToF(src[d]), mn = mx;
    for (int t = 1; t < kP; ++t) {
      const float x = ToF(src[t * ts + d]);
      mx = fmaxf(mx, x);
      mn = fminf(mn, x);
    }
    const float scale = fmaxf(__fdiv_rn(__fsub_rn(mx, mn), static_cast<float>(levels)), 1e-6f);
    uint8_t* dense = dst + d * (kP / 4);
    uint8_t* sparse = dst + g.k_sparse_offset + (boosted ? idx[d] : 0) * (kP / 4);
    for (int b = 0; b < kP / 4; ++b) {
      uint8_t lo = 0, hi = 0;
      for (int j = 0; j < 4; ++j) {
        const int q = QuantCode(ToF(src[(4 * b + j) * ts + d]), mn, scale, levels);
        lo |= static_cast<uint8_t>((q & 3) << (2 * j));
        hi |= static_cast<uint8_t>(((q >> 2) & 3) << (2 * j));
      }
      dense[b] = lo;
      if (boosted) sparse[b] = hi;
    }
    dst[g.k_idx_offset + d] = idx[d];
    StoreMeta(dst + g.k_meta_offset + 4 * d, scale, mn);
  }
  for (int b = g.k_meta_offset + 4 * D + threadIdx.x; b < g.k_head_bytes; b += blockDim.x) {
    dst[b] = 0;
  }
}

template <typename T>
__global__ void GenericPackVKernel(KittyGeometry g, const KittyPackJob* __restrict__ jobs) {
  const KittyPackJob job = jobs[blockIdx.x];
  const int h = blockIdx.y;
  if (!g.quantized) {
    CopyAutoPage<T>(g, job, h);
    return;
  }
  const int D = g.head_dim;
  const T* src = static_cast<const T*>(job.src) + h * job.head_stride;
  const int64_t ts = job.token_stride;
  uint8_t* dst = static_cast<uint8_t*>(job.dst) + static_cast<int64_t>(h) * g.v_head_bytes;
  for (int t = threadIdx.x; t < kP; t += blockDim.x) {
    const T* x = src + t * ts;
    float mx = ToF(x[0]), mn = mx;
    for (int d = 1; d < D; ++d) {
      mx = fmaxf(mx, ToF(x[d]));
      mn = fminf(mn, ToF(x[d]));
    }
    const float scale = fmaxf(__fdiv_rn(__fsub_rn(mx, mn), 3.0f), 1e-6f);
    uint8_t* row = dst + t * (D / 4);
    for (int b = 0; b < D / 4; ++b) {
      uint8_t byte = 0;
      for (int j = 0; j < 4; ++j) {
        byte |= static_cast<uint8_t>(QuantCode(ToF(x[4 * b + j]), mn, scale, 3) << (2 * j));
      }
      row[b] = byte;
    }
    StoreMeta(dst + g.v_meta_offset + 4 * t, scale, mn);
  }
  for (int b = g.v_meta_offset + 4 * kP + threadIdx.x; b < g.v_head_bytes; b += blockDim.x) {
    dst[b] = 0;
  }
}

// ---- generic attention --------------------------------------------------------------------------

constexpr int kAttnThreads = 128;

// Where one cached or new token's K (or V) row lives.
struct RowRef {
  const void* ptr;  // fp row (elements T) or the page head block (bytes)
  int t;            // token within the page (quantized pages)
  bool quant;
};

template <typename T, int D>
__global__ void __launch_bounds__(kAttnThreads)
    GenericAttentionKernel(KittyGeometry g, KittyAttentionBatch b) {
  const KittyQueryItem item = b.items[blockIdx.x];
  const int hq = blockIdx.y;
  const int hkv = g.num_kv_heads, grp = g.num_q_heads / hkv, kvh = hq / grp;
  const KittySeqDesc seq = b.seqs[item.seq];
  const int S = g.sink_capacity;
  __shared__ float qs[D];
  const T* qp =
      static_cast<const T*>(b.q) + (static_cast<int64_t>(blockIdx.x) * g.num_q_heads + hq) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) qs[d] = ToF(qp[d]);
  __syncthreads();

  const int64_t elems_sink = static_cast<int64_t>(S) * D;
  const T* sink_k = static_cast<const T*>(b.pools.sink) +
                    (static_cast<int64_t>(seq.slot) * 2 * hkv + kvh) * elems_sink;
  const T* sink_v = sink_k + hkv * elems_sink;
  const T* k_tail =
      static_cast<const T*>(b.pools.k_tail) + (static_cast<int64_t>(seq.slot) * hkv + kvh) * kP * D;
  const T* v_tail = static_cast<const T*>(b.pools.v_tail) +
                    (static_cast<int64_t>(seq.slot) * hkv + kvh) * g.v_tail_capacity * D;
  const int cached = seq.sink_tokens + kP * seq.num_k_pages + seq.k_tail_tokens;
  const int total = cached + item.num_new;

  float m = -INFINITY, l = 0.0f;
  float acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] = 0.0f;

  for (int j = threadIdx.x; j < total; j += blockDim.x) {
    RowRef kr, vr;
    if (j < seq.sink_tokens) {
      kr = {sink_k + static_cast<int64_t>(j) * D, 0, false};
      vr = {sink_v + static_cast<int64_t>(j) * D, 0, false};
    } else if (j < cached) {
      const int x = j - seq.sink_tokens;
      if (x < kP * seq.num_k_pages) {
        const int page = b.k_page_ids[seq.page_offset + x / kP];
        const uint8_t* base = b.pools.k_pages + static_cast<int64_t>(page) * g.k_page_bytes +
                              static_cast<int64_t>(kvh) * g.k_head_bytes;
        kr = g.quantized ? RowRef{base, x % kP, true}
                         : RowRef{reinterpret_cast<const T*>(base) + (x % kP) * D, 0, false};
      } else {
        kr = {k_tail + static_cast<int64_t>(x - kP * seq.num_k_pages) * D, 0, false};
      }
      if (x < kP * seq.num_v_pages) {
        const int page = b.v_page_ids[seq.page_offset + x / kP];
        const uint8_t* base = b.pools.v_pages + static_cast<int64_t>(page) * g.v_page_bytes +
                              static_cast<int64_t>(kvh) * g.v_head_bytes;
        vr = g.quantized ? RowRef{base, x % kP, true}
                         : RowRef{reinterpret_cast<const T*>(base) + (x % kP) * D, 0, false};
      } else {
        vr = {v_tail + static_cast<int64_t>(x - kP * seq.num_v_pages) * D, 0, false};
      }
    } else {
      const int64_t r = item.new_offset + (j - cached);
      kr = {static_cast<const T*>(b.k_new) + (r * hkv + kvh) * D, 0, false};
      vr = {static_cast<const T*>(b.v_new) + (r * hkv + kvh) * D, 0, false};
    }
    float s = 0.0f;
    if (!kr.quant) {
      const T* k = static_cast<const T*>(kr.ptr);
#pragma unroll
      for (int d = 0; d < D; ++d) s += qs[d] * ToF(k[d]);
    } else {
      const uint8_t* hb = static_cast<const uint8_t*>(kr.ptr);
      const int t = kr.t;
#pragma unroll
      for (int d = 0; d < D; ++d) {
        int q = (hb[d * (kP / 4) + t / 4] >> (2 * (t % 4))) & 3;
        const int id = hb[g.k_idx_offset + d];
        if (id < g.boost_channels) {
          q |= ((hb[g.k_sparse_offset + id * (kP / 4) + t / 4] >> (2 * (t % 4))) & 3) << 2;
        }
        const float x = DequantCode(q, LoadHalfBytes(hb + g.k_meta_offset + 4 * d),
                                    LoadHalfBytes(hb + g.k_meta_offset + 4 * d + 2));
        s += qs[d] * x;
      }
    }
    s *= b.scale;
    const float mn = fmaxf(m, s);
    const float corr = expf(m - mn);  // m = -inf: 0
    const float p = expf(s - mn);
    l = l * corr + p;
    if (!vr.quant) {
      const T* v = static_cast<const T*>(vr.ptr);
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] = acc[d] * corr + p * ToF(v[d]);
    } else {
      const uint8_t* hb = static_cast<const uint8_t*>(vr.ptr);
      const int t = vr.t;
      const float sc = LoadHalfBytes(hb + g.v_meta_offset + 4 * t);
      const float mi = LoadHalfBytes(hb + g.v_meta_offset + 4 * t + 2);
#pragma unroll
      for (int d = 0; d < D; ++d) {
        const int q = (hb[t * (D / 4) + d / 4] >> (2 * (d % 4))) & 3;
        acc[d] = acc[d] * corr + p * DequantCode(q, sc, mi);
      }
    }
    m = mn;
  }

  // Merge the threads' (m, l, acc): warp shuffles, then the warps through shared memory.
  __shared__ float wm[kAttnThreads / 32], wl[kAttnThreads / 32];
  __shared__ float wacc[kAttnThreads / 32][D];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float M = WarpMax(m);
  const float f = (m == -INFINITY) ? 0.0f : expf(m - M);
  l = WarpSum(l * f);
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] = WarpSum(acc[d] * f);
  if (lane == 0) {
    wm[warp] = M;
    wl[warp] = l;
#pragma unroll
    for (int d = 0; d < D; ++d) wacc[warp][d] = acc[d];
  }
  __syncthreads();
  float gm = -INFINITY;
  for (int w = 0; w < kAttnThreads / 32; ++w) gm = fmaxf(gm, wm[w]);
  float gl = 0.0f;
  for (int w = 0; w < kAttnThreads / 32; ++w) {
    if (wm[w] != -INFINITY) gl += wl[w] * expf(wm[w] - gm);
  }
  T* out = static_cast<T*>(b.out) + (static_cast<int64_t>(blockIdx.x) * g.num_q_heads + hq) * D;
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kAttnThreads / 32; ++w) {
      if (wm[w] != -INFINITY) o += wacc[w][d] * expf(wm[w] - gm);
    }
    out[d] = FromF<T>(o / gl);
  }
}

// ---- random weights
// --------------------------------------------------------------------------------

template <typename T>
__global__ void RandomFillKernel(T* __restrict__ out, int64_t n, uint64_t state, float a) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    uint64_t z = state + static_cast<uint64_t>(i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    const float u = static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
    out[i] = FromF<T>(__fmul_rn(__fsub_rn(__fmul_rn(2.0f, u), 1.0f), a));
  }
}

int GridFor(int64_t n, int threads) {
  const int64_t blocks = (n + threads - 1) / threads;
  return static_cast<int>(blocks < 65536 * 16 ? (blocks > 0 ? blocks : 1) : 65536 * 16);
}

}  // namespace

cudaError_t LaunchEmbedding(ModelElem elem, const void* table, const int32_t* ids, int rows,
                            int dim, float* x, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    EmbeddingKernel<T><<<rows, 256, 0, stream>>>(static_cast<const T*>(table), ids, dim, x);
    return LastError();
  });
}

cudaError_t LaunchRmsNorm(ModelElem elem, float* x, const float* residual, const int32_t* row_index,
                          const float* weight, int rows, int dim, float eps, void* out,
                          cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const int threads = dim >= 1024 ? 1024 : (dim >= 256 ? 256 : 64);
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    RmsNormKernel<T><<<rows, threads, 0, stream>>>(x, residual, row_index, weight, dim, eps,
                                                   static_cast<T*>(out));
    return LastError();
  });
}

cudaError_t LaunchRopeTable(const float* inv_freq, const int32_t* positions, int rows, int half,
                            float* cos_sin, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(rows) * half;
  if (n == 0) return cudaSuccess;
  RopeTableKernel<<<static_cast<int>((n + 255) / 256), 256, 0, stream>>>(inv_freq, positions, rows,
                                                                         half, cos_sin);
  return LastError();
}

cudaError_t LaunchQkvEpilogue(ModelElem elem, const float* qkv, const float* bias,
                              const float* q_norm, const float* k_norm, float eps,
                              const float* cos_sin, int rows, int num_q_heads, int num_kv_heads,
                              int head_dim, void* q, void* k, void* v, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    const int heads = num_q_heads + 2 * num_kv_heads;
    QkvEpilogueKernel<T><<<dim3(rows, (heads + 7) / 8), 256, 0, stream>>>(
        qkv, bias, q_norm, k_norm, eps, cos_sin, num_q_heads, num_kv_heads, head_dim,
        static_cast<T*>(q), static_cast<T*>(k), static_cast<T*>(v));
    return LastError();
  });
}

cudaError_t LaunchSiluMul(ModelElem elem, const void* gate_up, int rows, int inter, void* out,
                          cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(rows) * inter;
  if (n == 0) return cudaSuccess;
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    SiluMulKernel<T><<<GridFor(n, 256), 256, 0, stream>>>(static_cast<const T*>(gate_up), rows,
                                                          inter, static_cast<T*>(out));
    return LastError();
  });
}

cudaError_t LaunchKvCopySegments(ModelElem elem, const KvCopySegment* segs, int num_segs,
                                 int num_blocks, int layer, int num_kv_heads, int head_dim,
                                 cudaStream_t stream) {
  (void)elem;  // 2-byte elements either way
  if (num_segs == 0 || num_blocks == 0) return cudaSuccess;
  KvCopyKernel<<<dim3(num_blocks, num_kv_heads), 128, 0, stream>>>(segs, num_segs, layer, head_dim);
  return LastError();
}

cudaError_t LaunchGenericPackK(const KittyGeometry& g, ModelElem elem, const KittyPackJob* jobs,
                               int num_jobs, cudaStream_t stream) {
  if (num_jobs == 0) return cudaSuccess;
  if (g.head_dim > 256 || g.head_dim % 4 != 0) return cudaErrorInvalidValue;
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    GenericPackKKernel<T><<<dim3(num_jobs, g.num_kv_heads), 128, 0, stream>>>(g, jobs);
    return LastError();
  });
}

cudaError_t LaunchGenericPackV(const KittyGeometry& g, ModelElem elem, const KittyPackJob* jobs,
                               int num_jobs, cudaStream_t stream) {
  if (num_jobs == 0) return cudaSuccess;
  if (g.head_dim > 256 || g.head_dim % 4 != 0) return cudaErrorInvalidValue;
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    GenericPackVKernel<T><<<dim3(num_jobs, g.num_kv_heads), 128, 0, stream>>>(g, jobs);
    return LastError();
  });
}

cudaError_t LaunchGenericAttention(const KittyGeometry& g, ModelElem elem,
                                   const KittyAttentionBatch& batch, cudaStream_t stream) {
  if (batch.num_items == 0) return cudaSuccess;
  const dim3 grid(batch.num_items, g.num_q_heads);
  return DispatchElem(elem, [&](auto tag) -> cudaError_t {
    using T = decltype(tag);
    switch (g.head_dim) {
      case 8:
        GenericAttentionKernel<T, 8><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      case 16:
        GenericAttentionKernel<T, 16><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      case 32:
        GenericAttentionKernel<T, 32><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      case 64:
        GenericAttentionKernel<T, 64><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      case 128:
        GenericAttentionKernel<T, 128><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      case 256:
        GenericAttentionKernel<T, 256><<<grid, kAttnThreads, 0, stream>>>(g, batch);
        break;
      default:
        return cudaErrorInvalidValue;
    }
    return LastError();
  });
}

cudaError_t LaunchRandomFill(ModelElem elem, void* out, int64_t n, uint64_t state_before, float std,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const float a = std * sqrtf(3.0f);
  return DispatchElem(elem, [&](auto tag) {
    using T = decltype(tag);
    RandomFillKernel<T>
        <<<GridFor(n, 256), 256, 0, stream>>>(static_cast<T*>(out), n, state_before, a);
    return LastError();
  });
}

}  // namespace kitty::kernels::cuda
