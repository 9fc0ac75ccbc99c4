// File: kernels/cuda/kitty_params.h
// -----------------------------------------------------------------------------
// Plain-old-data views shared by the Kitty CUDA kernels (kitty_pack.cu, kitty_attention.cu),
// their host wrappers (kitty_kernels.cc), tests and benchmarks. Standard headers only, so the
// same structs compile under nvcc and the host compiler. All pointers are device pointers and
// non-owning (STYLE.md §5; FlashInfer paged_kv_t).
#ifndef KITTY_KERNELS_CUDA_KITTY_PARAMS_H_
#define KITTY_KERNELS_CUDA_KITTY_PARAMS_H_

#include <cstddef>
#include <cstdint>

namespace kitty::kernels::cuda {

// One page to seal: 128 tokens of all kv heads from a full-precision (fp16/bf16) source into
// a page. Source element (head h, token t, channel d) = src[h*head_stride + t*token_stride + d]
// (elements). K tail: head_stride = 128*D, token_stride = D; prefill activations [L][Hkv][D]:
// head_stride = D, token_stride = Hkv*D.
// V only: after packing, rows [128, 128 + shift_rows) of each head move to rows [0, shift_rows)
// of the same source (the linear V tail dropping its sealed oldest 128 tokens, KITTY.md §10.3);
// REQUIRES shift_rows <= 128 and a source with that many rows.
struct KittyPackJob {
  void* src = nullptr;
  void* dst = nullptr;  // page: [KPageBytes] / [VPageBytes] (auto: [Hkv][128][D] elements)
  int64_t head_stride = 0;
  int64_t token_stride = 0;
  int32_t shift_rows = 0;
  int32_t reserved = 0;
};

// Cached state of one (sequence, layer) before this step (SeqKvCounters) plus where it lives.
// Sink: sink_pool + slot*(2*Hkv*S*D) elements, K sink [Hkv][S][D] then V sink [Hkv][S][D].
// K tail: k_tail_pool + slot*(Hkv*128*D), [Hkv][128][D]. V tail: v_tail_pool +
// slot*(Hkv*Vcap*D), [Hkv][Vcap][D] (Vcap = 128 + W). Page i of the sequence is
// k_page_ids[page_offset + i] (i < num_k_pages) and v_page_ids[page_offset + i]
// (i < num_v_pages).
struct KittySeqDesc {
  int32_t slot = 0;
  int32_t sink_tokens = 0;
  int32_t num_k_pages = 0;
  int32_t k_tail_tokens = 0;
  int32_t num_v_pages = 0;
  int32_t v_tail_tokens = 0;
  int32_t page_offset = 0;
  int32_t reserved = 0;
};

// One query token: attends everything cached for `seq` plus the first num_new rows of the new
// tokens k_new/v_new[new_offset ...] (rows [new_offset + r][Hkv][D]; causal: decode has
// num_new = 1, the i-th token of a prefill chunk num_new = i + 1).
// q: q[item][Hq][D]; out: out[item][Hq][D].
struct KittyQueryItem {
  int32_t seq = 0;
  int32_t num_new = 1;
  int32_t new_offset = 0;
  int32_t reserved = 0;
};

// Consecutive query items [first_item, first_item + num_items) that one CTA serves together:
// the tokens of one prefill chunk of one sequence in order (item k + 1 has num_new one larger
// than item k). With g = Hq/Hkv query heads per kv head, up to 8/g tokens share the mma's 8
// columns, so each K/V row of the prefix is read once per group instead of once per token.
struct KittyQueryGroup {
  int32_t first_item = 0;
  int32_t num_items = 1;
};
// One layer's pools (base pointers already offset to the layer).
struct KittyLayerPools {
  const uint8_t* k_pages = nullptr;  // [num_pages][k_page_bytes]
  const uint8_t* v_pages = nullptr;  // [num_pages][v_page_bytes]
  const void* sink = nullptr;        // [slots][2][Hkv][S][D]
  const void* k_tail = nullptr;      // [slots][Hkv][128][D]
  const void* v_tail = nullptr;      // [slots][Hkv][Vcap][D]
};

// Geometry the kernels need (derived from KvCacheSpec by the host wrapper).
struct KittyGeometry {
  int32_t head_dim = 0;
  int32_t num_kv_heads = 0;
  int32_t num_q_heads = 0;
  int32_t sink_capacity = 0;  // S
  int32_t v_tail_capacity = 0;
  int32_t boost_channels = 0;
  int32_t quantized = 0;
  int32_t k_head_bytes = 0;  // quantized: KHeadLayout.head_bytes; auto: 128*D*elem
  int32_t v_head_bytes = 0;
  int32_t k_sparse_offset = 0;
  int32_t k_idx_offset = 0;
  int32_t k_meta_offset = 0;
  int32_t v_meta_offset = 0;
  int64_t k_page_bytes = 0;
  int64_t v_page_bytes = 0;
};

// Everything one attention launch reads (device pointers unless said otherwise).
struct KittyAttentionBatch {
  KittyLayerPools pools;
  const KittySeqDesc* seqs = nullptr;
  const int32_t* k_page_ids = nullptr;
  const int32_t* v_page_ids = nullptr;
  const KittyQueryItem* items = nullptr;
  int32_t num_items = 0;        // host value
  const void* q = nullptr;      // [items][Hq][D]
  const void* k_new = nullptr;  // [rows][Hkv][D]
  const void* v_new = nullptr;  // [rows][Hkv][D]
  void* out = nullptr;          // [items][Hq][D]
  float scale = 0.0f;           // usually 1/sqrt(D)
  // Host value: an upper bound on (cached tokens + num_new) over all items; sizes the split.
  int64_t max_item_tokens = 0;
};
// Optional grouping of a batch's items (GroupQueryItems): groups in device memory, num_groups
// of them, each of at most max_group_items (host values) <= 8/g items. Kept out of
// KittyAttentionBatch: the kernels take that by value, and past 128 bytes nvcc stopped keeping
// its fields in registers (H200: decode attention +3.5%).
struct KittyQueryGroups {
  const KittyQueryGroup* groups = nullptr;
  int32_t num_groups = 0;
  int32_t max_group_items = 1;
};

// Query rows (token x head of one kv head) of one CTA of the query-tiled prefill kernel: a tile
// holds up to kPrefillTileRows / g tokens.
inline constexpr int kPrefillTileRows = 64;

// Split plan of one attention launch (flash-decoding): grid (num_splits, Hkv, items or groups);
// each split covers chunks_per_split 128-token chunks of its item.
struct KittySplitPlan {
  int num_splits = 1;
  int chunks_per_split = 1;    // work units per split (below)
  size_t workspace_bytes = 0;  // fp32 partials; 0 when num_splits == 1
  // The sink and the first tail chunk of an item are each cut into fp_parts units (tokens t
  // with t % 8 in [8 p / fp_parts, 8 (p + 1) / fp_parts)), every other chunk is one unit.
  int fp_parts = 1;
  // > 0: launches without query groups run in stream mode on this many CTAs (kitty_attention.cu:
  // each warp an equal-cost piece of the batch; partials merged by a second kernel).
  int stream_ctas = 0;
  // Optional, device memory: KittyStreamPlanInts of the batch (else one more kernel makes them).
  const int32_t* stream_plan = nullptr;
};
// Upper bound on the work units of an item of at most max_item_tokens cached + new tokens:
// its chunks (+ sink, + a tail split across a page boundary) and the extra parts.
inline long long KittyPlanUnits(long long max_item_tokens, int fp_parts) {
  return (max_item_tokens + 127) / 128 + 2 + 2LL * (fp_parts - 1);
}

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_KITTY_PARAMS_H_
