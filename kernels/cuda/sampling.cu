// File: kernels/cuda/sampling.cu
// -----------------------------------------------------------------------------
// The GPU sampler of sampling.h: one 1024-thread block per row. Every pass re-reads the row
// from global memory (a 150k-entry row is 0.6 MB: it stays in L2 between passes); element
// values are recomputed with the same expression in every pass, so the kept set and the
// inverse-CDF walk agree bit for bit.
#include <cfloat>
#include <climits>
#include <cstdint>

#include "kernels/cuda/sampling.h"

namespace kitty::kernels::cuda {
namespace {

constexpr int kThreads = 1024;
constexpr int kWarps = kThreads / 32;

// Order-preserving map of a float onto uint32 (larger float → larger key).
__device__ __forceinline__ uint32_t Key(float f) {
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

struct ArgMax {
  float v;
  int i;
};
// The better of two candidates: larger value, then smaller index.
__device__ __forceinline__ ArgMax Better(ArgMax a, ArgMax b) {
  return (b.v > a.v || (b.v == a.v && b.i < a.i)) ? b : a;
}

// Block reductions; every thread gets the result. `scratch` holds kWarps entries.
template <typename T, typename Op>
__device__ T BlockReduce(T v, T* scratch, T identity, Op op) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  __syncthreads();  // scratch may still be read by the previous reduction
  if ((threadIdx.x & 31) == 0) scratch[threadIdx.x >> 5] = v;
  __syncthreads();
  T t = (threadIdx.x & 31) < kWarps ? scratch[threadIdx.x & 31] : identity;
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) t = op(t, __shfl_xor_sync(0xffffffffu, t, o));
  return t;
}
__device__ float BlockSum(float v, float* s) {
  return BlockReduce(v, s, 0.0f, [](float a, float b) { return a + b; });
}
__device__ float BlockMax(float v, float* s) {
  return BlockReduce(v, s, -FLT_MAX, [](float a, float b) { return fmaxf(a, b); });
}
__device__ int BlockCount(int v, int* s) {
  return BlockReduce(v, s, 0, [](int a, int b) { return a + b; });
}
__device__ int BlockMaxInt(int v, int* s) {
  return BlockReduce(v, s, INT_MIN, [](int a, int b) { return max(a, b); });
}
__device__ ArgMax BlockArgMax(ArgMax a, float* sv, int* si) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax b{__shfl_xor_sync(0xffffffffu, a.v, o), __shfl_xor_sync(0xffffffffu, a.i, o)};
    a = Better(a, b);
  }
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    sv[threadIdx.x >> 5] = a.v;
    si[threadIdx.x >> 5] = a.i;
  }
  __syncthreads();
  const int lane = threadIdx.x & 31;
  ArgMax t = lane < kWarps ? ArgMax{sv[lane], si[lane]} : ArgMax{-FLT_MAX, INT_MAX};
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    ArgMax b{__shfl_xor_sync(0xffffffffu, t.v, o), __shfl_xor_sync(0xffffffffu, t.i, o)};
    t = Better(t, b);
  }
  return t;
}

__global__ void __launch_bounds__(kThreads)
    SampleRowsKernel(float* __restrict__ logits, int V, const SampleRowParams* __restrict__ params,
                     PenaltyToken* __restrict__ penalties, SampleRowResult* __restrict__ out) {
  __shared__ float sf[kWarps];
  __shared__ int si[kWarps];
  __shared__ float chunk_prefix[kThreads];
  __shared__ int picked;
  __shared__ float picked_raw;
  const SampleRowParams p = params[blockIdx.x];
  float* row = logits + static_cast<int64_t>(p.row) * V;
  const int tid = threadIdx.x;
  SampleRowResult* res = out + blockIdx.x;

  // 1. Logprobs of the raw row.
  float lse = 0.0f;
  const int n_top = min(max(p.num_logprobs, 0), kMaxSampleLogprobs);
  if (n_top > 0) {
    float m = -FLT_MAX;
    for (int i = tid; i < V; i += kThreads) m = fmaxf(m, row[i]);
    m = BlockMax(m, sf);
    float z = 0.0f;
    for (int i = tid; i < V; i += kThreads) z += expf(row[i] - m);
    z = BlockSum(z, sf);
    lse = m + logf(z);
    ArgMax prev{FLT_MAX, -1};
    for (int k = 0; k < n_top && k < V; ++k) {
      ArgMax best{-FLT_MAX, INT_MAX};
      for (int i = tid; i < V; i += kThreads) {
        const float v = row[i];
        const bool after = v < prev.v || (v == prev.v && i > prev.i);
        if (after) best = Better(best, ArgMax{v, i});
      }
      best = BlockArgMax(best, sf, si);
      if (tid == 0) {
        res->top_ids[k] = best.i;
        res->top_logprobs[k] = best.v - lse;
      }
      prev = best;
    }
  }
  if (tid == 0) res->num_top = min(n_top, V);

  // 2. Penalties, in place; the raw values are kept for the sampled token's logprob.
  PenaltyToken* pen = penalties + p.penalty_offset;
  const bool rep = p.repetition_penalty != 1.0f;
  for (int j = tid; j < p.num_penalty; j += kThreads) {
    const int id = pen[j].token;
    if (id < 0 || id >= V) continue;
    float l = row[id];
    pen[j].raw = l;
    if (rep) l = l > 0.0f ? l / p.repetition_penalty : l * p.repetition_penalty;
    if (pen[j].output_count > 0) {
      l -= p.frequency_penalty * static_cast<float>(pen[j].output_count) + p.presence_penalty;
    }
    row[id] = l;
  }
  __syncthreads();

  int token = 0;
  if (p.temperature <= 0.0f) {
    // 3a. Greedy.
    ArgMax best{-FLT_MAX, INT_MAX};
    for (int i = tid; i < V; i += kThreads) best = Better(best, ArgMax{row[i], i});
    best = BlockArgMax(best, sf, si);
    token = best.i == INT_MAX ? 0 : best.i;
  } else {
    // 3b. Temperature, top-k, min-p, top-p, inverse CDF.
    const float inv_t = 1.0f / p.temperature;
    float m = -FLT_MAX;
    for (int i = tid; i < V; i += kThreads) m = fmaxf(m, row[i] * inv_t);
    m = BlockMax(m, sf);
    uint32_t lo = 0;  // keep keys >= lo
    if (p.top_k > 0 && p.top_k < V) {
      uint32_t t = 0;
      for (int bit = 31; bit >= 0; --bit) {
        const uint32_t cand = t | (1u << bit);
        int c = 0;
        for (int i = tid; i < V; i += kThreads) c += Key(row[i] * inv_t) >= cand ? 1 : 0;
        if (BlockCount(c, si) >= p.top_k) t = cand;
      }
      lo = t;
    }
    const float min_p = p.min_p;
    auto kept_e = [&](int i) -> float {
      const float x = row[i] * inv_t;
      if (Key(x) < lo) return 0.0f;
      const float e = expf(x - m);
      return (min_p > 0.0f && e < min_p) ? 0.0f : e;
    };
    if (p.top_p < 1.0f) {
      // Mass of the top-k set (the renormalisation the CPU sampler's cumulative sum uses).
      float z = 0.0f;
      for (int i = tid; i < V; i += kThreads) {
        const float x = row[i] * inv_t;
        z += Key(x) >= lo ? expf(x - m) : 0.0f;
      }
      z = BlockSum(z, sf);
      const float target = p.top_p * z;
      uint32_t t = 0;
      for (int bit = 31; bit >= 0; --bit) {
        const uint32_t cand = t | (1u << bit);
        float s = 0.0f;
        for (int i = tid; i < V; i += kThreads) {
          s += Key(row[i] * inv_t) >= cand ? kept_e(i) : 0.0f;
        }
        if (BlockSum(s, sf) >= target) t = cand;
      }
      lo = max(lo, t);
    }
    // Inverse CDF in id order: thread `tid` owns the contiguous chunk [c0, c1).
    const int chunk = (V + kThreads - 1) / kThreads;
    const int c0 = min(V, tid * chunk), c1 = min(V, c0 + chunk);
    float mine = 0.0f;
    int last_kept = -1;
    for (int i = c0; i < c1; ++i) {
      const float e = kept_e(i);
      mine += e;
      if (e > 0.0f) last_kept = i;
    }
    // Inclusive scan of the chunk sums (Hillis-Steele over shared memory).
    chunk_prefix[tid] = mine;
    __syncthreads();
    for (int off = 1; off < kThreads; off <<= 1) {
      const float add = tid >= off ? chunk_prefix[tid - off] : 0.0f;
      __syncthreads();
      chunk_prefix[tid] += add;
      __syncthreads();
    }
    const float total = chunk_prefix[kThreads - 1];
    const float incl = chunk_prefix[tid];
    const float excl = incl - mine;
    const float target = p.uniform * total;
    // The last thread that holds any kept token takes the draws that rounding pushes past it.
    const int last_owner = BlockMaxInt(last_kept >= 0 ? tid : -1, si);
    if (tid == 0) picked = -1;
    __syncthreads();
    const bool in_range = mine > 0.0f && excl <= target && target < incl;
    const bool overflow = tid == last_owner && target >= incl;
    if (in_range || overflow) {
      int pick = last_kept;
      if (in_range) {
        // Same summation order as `mine`, so a target inside the chunk is found in it.
        const float local = target - excl;
        float acc = 0.0f;
        for (int i = c0; i < c1; ++i) {
          const float e = kept_e(i);
          acc += e;
          if (e > 0.0f && acc > local) {
            pick = i;
            break;
          }
        }
      }
      atomicMax(&picked, pick);  // two owners only when the target sits on a chunk border
    }
    __syncthreads();
    token = picked < 0 ? 0 : picked;
  }

  // 4. The sampled token's raw logit (saved before the penalties) for its logprob.
  if (tid == 0) picked_raw = row[token];
  __syncthreads();
  for (int j = tid; j < p.num_penalty; j += kThreads) {
    if (pen[j].token == token) picked_raw = pen[j].raw;
  }
  __syncthreads();
  if (tid == 0) {
    res->token = token;
    res->logprob = n_top > 0 ? picked_raw - lse : 0.0f;
  }
}

}  // namespace

cudaError_t LaunchSampleRows(float* logits, int vocab, const SampleRowParams* params, int num_rows,
                             PenaltyToken* penalties, SampleRowResult* out, cudaStream_t stream) {
  if (num_rows <= 0) return cudaSuccess;
  SampleRowsKernel<<<num_rows, kThreads, 0, stream>>>(logits, vocab, params, penalties, out);
  return cudaGetLastError();
}

}  // namespace kitty::kernels::cuda
