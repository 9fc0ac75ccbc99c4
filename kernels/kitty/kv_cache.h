// File: kernels/kitty/kv_cache.h
// -----------------------------------------------------------------------------
// Per-(sequence, layer) Kitty KV state as caller-owned counters plus non-owning buffers,
// the append rule that seals pages (KITTY.md §1.2–§1.4 with the §10.3 linear tails), and
// the CPU reference attention over mixed storage (sink + dequantized pages + fp tails).
//
// Token placement after the sink (x = L - S tokens past the sink, P = 128, W = V window):
//
//   K:  | page 0 | page 1 | ... | page pk-1 | K tail (ck < P)          |
//   V:  | page 0 | page 1 | ... | page pv-1 | V tail (cv < P + W)      |
//       pk = x / P, ck = x % P;  pv = (x < W) ? 0 : (x - W) / P, cv = x - P*pv.
//
// For quantized modes (W = 128) this is KITTY.md §1.2 (V tail = Q-buffer + window), so
// once x >= P: pk = pv + 1 and v_tail_tokens = k_tail_tokens + 128 (the reference's ck = cv
// with cv its V Q-buffer and a full 128-token window). For kAuto (W = 0) K and V seal together.
//
// Step semantics (decode): AttendCpu over (old state + the new token's own fp k/v), then
// AppendKv — KITTY.md §1.4 Insert → Attention → Quantize. A whole prompt in one call is
// §1.3 (prefill attends fp, then distributes). AppendKv is path independent: the bytes of
// page i depend only on its 128 tokens, however the tokens were split into calls.
//
// Thread safety: functions are pure over their arguments; callers serialize access to one
// sequence's buffers.
#ifndef KITTY_KERNELS_KITTY_KV_CACHE_H_
#define KITTY_KERNELS_KITTY_KV_CACHE_H_

#include <cstdint>

#include "absl/types/span.h"
#include "kernels/kitty/kv_format.h"

namespace kitty::kernels {

// Counters of one (sequence, layer). Owned by the caller (the block manager mirrors them).
struct SeqKvCounters {
  int32_t sink_tokens = 0;    // tokens in the sink, <= S
  int32_t num_k_pages = 0;    // pk: sealed K pages
  int32_t k_tail_tokens = 0;  // ck: < k_tail_capacity() between calls
  int32_t num_v_pages = 0;    // pv: sealed V pages
  int32_t v_tail_tokens = 0;  // < v_tail_capacity() between calls

  int64_t num_tokens() const {
    return sink_tokens + int64_t{KvCacheSpec::kPageTokens} * num_k_pages + k_tail_tokens;
  }
  friend bool operator==(const SeqKvCounters&, const SeqKvCounters&) = default;
};

// Non-owning buffers of one (sequence, layer). Float32 (the CPU backend's dtype).
struct SeqKvBuffers {
  float* sink_k = nullptr;  // [Hkv][S][D]
  float* sink_v = nullptr;  // [Hkv][S][D]
  float* k_tail = nullptr;  // [Hkv][k_tail_capacity()][D], token order
  float* v_tail = nullptr;  // [Hkv][v_tail_capacity()][D], oldest first
  // Page i of this sequence for this layer, [KPageBytes] / [VPageBytes] each. Must include
  // the pages that seal during the AppendKv call (size >= counters after).
  absl::Span<uint8_t* const> k_pages;
  absl::Span<uint8_t* const> v_pages;
};

// Appends n tokens in order. For each token: while sink_tokens < S it goes to the sink (K
// and V). Otherwise K → k_tail; when the K tail reaches 128 it is packed into
// k_pages[num_k_pages++] and emptied. V → v_tail; when the V tail reaches 128 + W, its
// oldest 128 tokens are packed into v_pages[num_v_pages++] and the remaining W shift to the
// front. k_new, v_new: [n][Hkv][D]. Returns the counters after.
// REQUIRES: `before` is consistent (as produced by this function from zero counters).
SeqKvCounters AppendKv(const KvCacheSpec& spec, const SeqKvCounters& before,
                       const SeqKvBuffers& buffers, const float* k_new, const float* v_new, int n);

// Counter-only version of the AppendKv rule (O(1)).
SeqKvCounters AdvanceKvCounters(const KvCacheSpec& spec, const SeqKvCounters& before, int n);

// Closed form of the counters of a sequence of num_tokens tokens (header diagram); equal to
// AdvanceKvCounters(spec, {}, num_tokens).
SeqKvCounters KvCountersForLength(const KvCacheSpec& spec, int64_t num_tokens);

// Read-only view of a sequence's cached tokens for one layer.
// K token order: sink, K pages, K tail; V order: sink, V pages, V tail; both totals equal.
struct SeqKvView {
  int32_t sink_tokens = 0;
  const float* sink_k = nullptr;             // [Hkv][S][D] (first sink_tokens rows valid)
  const float* sink_v = nullptr;             // [Hkv][S][D]
  absl::Span<const uint8_t* const> k_pages;  // [num_k_pages] x [KPageBytes]
  absl::Span<const uint8_t* const> v_pages;  // [num_v_pages] x [VPageBytes]
  int32_t k_tail_tokens = 0;
  const float* k_tail = nullptr;  // [Hkv][k_tail_capacity()][D]
  int32_t v_tail_tokens = 0;
  const float* v_tail = nullptr;  // [Hkv][v_tail_capacity()][D]
};

// View of the state described by counters over buffers (pages truncated to the counts).
SeqKvView MakeSeqKvView(const SeqKvCounters& counters, const SeqKvBuffers& buffers);

// Attention of n new query tokens (positions T..T+n-1, T = cached tokens in `view`) over the
// cached tokens (pages dequantized per KITTY.md §2/§3) plus the new tokens' own
// full-precision k/v, causal among the new ones: query i sees cached tokens and new tokens
// 0..i. GQA: query head hq uses kv head hq / (Hq / Hkv). Logits, softmax and the output
// accumulation are fp32 (no fp16 logits).
//   q:     [n][Hq][D]
//   k_new: [n][Hkv][D]
//   v_new: [n][Hkv][D]
//   out:   [n][Hq][D]
// REQUIRES: Hq % Hkv == 0, scale usually 1/sqrt(D). Parallel over (token, query head) with
// OpenMP; the result does not depend on the thread count.
void AttendCpu(const KvCacheSpec& spec, const SeqKvView& view, int num_q_heads, const float* q,
               const float* k_new, const float* v_new, int n, float scale, float* out);

}  // namespace kitty::kernels

#endif  // KITTY_KERNELS_KITTY_KV_CACHE_H_
