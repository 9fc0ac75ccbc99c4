// File: kernels/cuda/kitty_pack.cu
// -----------------------------------------------------------------------------
// K and V page pack kernels (KITTY.md §2–§4). One block per (job, kv head). Arithmetic follows
// kernels/kitty/kv_format.cc operation by operation in fp32 with explicit round-to-nearest
// intrinsics (no contraction), so the bytes equal PackKPage/PackVPage on the same fp32 values:
//   score  = (sum_t |x|, in token order) / 128
//   rank   = #channels with a larger score or an equal score and a lower index
//   scale  = max((max - min) / levels, 1e-6);  q = clamp(floor((x - min)/scale + 0.5), 0, L)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/device_convert.cuh"
#include "kernels/cuda/kitty_launch.h"

namespace kitty::kernels::cuda {
namespace {

constexpr int kP = 128;

__device__ __forceinline__ uint8_t QuantCode(float x, float mn, float scale, float levels) {
  float q = floorf(__fadd_rn(__fdiv_rn(__fsub_rn(x, mn), scale), 0.5f));
  q = fminf(fmaxf(q, 0.0f), levels);
  return static_cast<uint8_t>(q);
}

__device__ __forceinline__ uint16_t HalfBits(float f) {
  return __half_as_ushort(__float2half_rn(f));
}

// blockDim.x = D (one thread per channel). Dynamic smem: float scores[D] + uint8 idx[D].
template <typename T>
__global__ void PackKQuantKernel(KittyGeometry g, const KittyPackJob* __restrict__ jobs) {
  extern __shared__ float k_scores[];
  const int d = threadIdx.x, D = g.head_dim, db = g.boost_channels, h = blockIdx.y;
  const KittyPackJob job = jobs[blockIdx.x];
  const T* x = static_cast<const T*>(job.src) + h * job.head_stride + d;
  uint8_t* head = static_cast<uint8_t*>(job.dst) + static_cast<int64_t>(h) * g.k_head_bytes;

  float sum = 0.0f, mx = -INFINITY, mn = INFINITY;
  for (int t = 0; t < kP; ++t) {
    const float v = ToF(x[t * job.token_stride]);
    sum = __fadd_rn(sum, fabsf(v));
    mx = fmaxf(mx, v);
    mn = fminf(mn, v);
  }
  const float score = __fdiv_rn(sum, static_cast<float>(kP));
  k_scores[d] = score;
  __syncthreads();
  int rank = 0;
  for (int c = 0; c < D; ++c) {
    const float s = k_scores[c];
    rank += (s > score || (s == score && c < d)) ? 1 : 0;
  }
  const bool boosted = rank < db;
  const int my_idx = boosted ? rank : db;
  const float levels = boosted ? 15.0f : 3.0f;
  const float scale = fmaxf(__fdiv_rn(__fsub_rn(mx, mn), levels), 1e-6f);

  uint32_t dense[kP / 16], sparse[kP / 16];
#pragma unroll
  for (int w = 0; w < kP / 16; ++w) {
    uint32_t lo = 0, hi = 0;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      const uint32_t q = QuantCode(ToF(x[(w * 16 + j) * job.token_stride]), mn, scale, levels);
      lo |= (q & 3u) << (2 * j);
      hi |= ((q >> 2) & 3u) << (2 * j);
    }
    dense[w] = lo;
    sparse[w] = hi;
  }
  uint4* drow = reinterpret_cast<uint4*>(head + d * (kP / 4));
  drow[0] = make_uint4(dense[0], dense[1], dense[2], dense[3]);
  drow[1] = make_uint4(dense[4], dense[5], dense[6], dense[7]);
  if (boosted) {
    uint4* srow = reinterpret_cast<uint4*>(head + g.k_sparse_offset + my_idx * (kP / 4));
    srow[0] = make_uint4(sparse[0], sparse[1], sparse[2], sparse[3]);
    srow[1] = make_uint4(sparse[4], sparse[5], sparse[6], sparse[7]);
  }
  head[g.k_idx_offset + d] = static_cast<uint8_t>(my_idx);
  const uint32_t meta =
      static_cast<uint32_t>(HalfBits(scale)) | (static_cast<uint32_t>(HalfBits(mn)) << 16);
  *reinterpret_cast<uint32_t*>(head + g.k_meta_offset + 4 * d) = meta;
  for (int b = g.k_meta_offset + 4 * D + d; b < g.k_head_bytes; b += D) head[b] = 0;
}

// blockDim.x = 128 (one thread per token). Then the optional V-tail shift.
template <typename T>
__global__ void PackVQuantKernel(KittyGeometry g, const KittyPackJob* __restrict__ jobs) {
  const int t = threadIdx.x, D = g.head_dim, h = blockIdx.y;
  const KittyPackJob job = jobs[blockIdx.x];
  T* src = static_cast<T*>(job.src) + h * job.head_stride;
  const T* x = src + t * job.token_stride;
  uint8_t* head = static_cast<uint8_t*>(job.dst) + static_cast<int64_t>(h) * g.v_head_bytes;
  float mx = -INFINITY, mn = INFINITY;
  for (int d = 0; d < D; ++d) {
    const float v = ToF(x[d]);
    mx = fmaxf(mx, v);
    mn = fminf(mn, v);
  }
  const float scale = fmaxf(__fdiv_rn(__fsub_rn(mx, mn), 3.0f), 1e-6f);
  uint32_t* row = reinterpret_cast<uint32_t*>(head + t * (D / 4));
  for (int w = 0; w < D / 16; ++w) {
    uint32_t word = 0;
#pragma unroll
    for (int j = 0; j < 16; ++j) {
      word |= static_cast<uint32_t>(QuantCode(ToF(x[w * 16 + j]), mn, scale, 3.0f)) << (2 * j);
    }
    row[w] = word;
  }
  *reinterpret_cast<uint32_t*>(head + g.v_meta_offset + 4 * t) =
      static_cast<uint32_t>(HalfBits(scale)) | (static_cast<uint32_t>(HalfBits(mn)) << 16);
  for (int b = g.v_meta_offset + 4 * kP + t; b < g.v_head_bytes; b += kP) head[b] = 0;
  if (job.shift_rows > 0) {
    __syncthreads();  // every row of this head was read before rows [0, shift) are overwritten
    for (int r = 0; r < job.shift_rows; ++r) {
      for (int d = t; d < D; d += kP) {
        src[r * job.token_stride + d] = src[(kP + r) * job.token_stride + d];
      }
    }
  }
}

// Auto pages: copy the tile into [Hkv][128][D]; V shift as above.
template <typename T>
__global__ void PackCopyKernel(KittyGeometry g, const KittyPackJob* __restrict__ jobs) {
  const int D = g.head_dim, h = blockIdx.y;
  const KittyPackJob job = jobs[blockIdx.x];
  T* src = static_cast<T*>(job.src) + h * job.head_stride;
  T* dst = static_cast<T*>(job.dst) + static_cast<int64_t>(h) * kP * D;
  for (int e = threadIdx.x; e < kP * D; e += blockDim.x) {
    const int t = e / D, d = e % D;
    dst[e] = src[t * job.token_stride + d];
  }
  if (job.shift_rows > 0) {
    __syncthreads();
    for (int e = threadIdx.x; e < job.shift_rows * D; e += blockDim.x) {
      const int t = e / D, d = e % D;
      src[t * job.token_stride + d] = src[(kP + t) * job.token_stride + d];
    }
  }
}

template <typename T>
cudaError_t LaunchPack(const KittyGeometry& g, bool is_k, const KittyPackJob* jobs, int num_jobs,
                       cudaStream_t stream) {
  if (num_jobs == 0) return cudaSuccess;
  const dim3 grid(num_jobs, g.num_kv_heads);
  if (!g.quantized) {
    PackCopyKernel<T><<<grid, 256, 0, stream>>>(g, jobs);
  } else if (is_k) {
    const size_t smem = sizeof(float) * g.head_dim;
    PackKQuantKernel<T><<<grid, g.head_dim, smem, stream>>>(g, jobs);
  } else {
    PackVQuantKernel<T><<<grid, kP, 0, stream>>>(g, jobs);
  }
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchKittyPackK(const KittyGeometry& g, KittyElem elem, const KittyPackJob* jobs,
                             int num_jobs, cudaStream_t stream) {
  return elem == KittyElem::kBF16 ? LaunchPack<__nv_bfloat16>(g, true, jobs, num_jobs, stream)
                                  : LaunchPack<__half>(g, true, jobs, num_jobs, stream);
}

cudaError_t LaunchKittyPackV(const KittyGeometry& g, KittyElem elem, const KittyPackJob* jobs,
                             int num_jobs, cudaStream_t stream) {
  return elem == KittyElem::kBF16 ? LaunchPack<__nv_bfloat16>(g, false, jobs, num_jobs, stream)
                                  : LaunchPack<__half>(g, false, jobs, num_jobs, stream);
}

}  // namespace kitty::kernels::cuda
