// File: models/kv_cache.h
// -----------------------------------------------------------------------------
// The memory that holds every sequence's KV state, in pools indexed by ids that the block
// manager hands out (DESIGN.md §3), and the per-step binding the forward pass attends through.
//
//   k_pages_ : [layers][num_k_pages][KPageBytes]        sealed K pages (Kitty format or fp)
//   v_pages_ : [layers][num_v_pages][VPageBytes]        sealed V pages
//   sinks_   : [layers][num_sink_blocks][2][Hkv][S][D]  float32 sink K (0) and V (1)
//   tails_   : [layers][num_tail_slots][...]            float32 K tail [Hkv][128][D] then
//                                                        V tail [Hkv][128+W][D]
// A page id names the same slot in every layer, so one allocation serves all layers.
//
// Thread safety: none. Owned and used by the engine thread only.
#ifndef KITTY_MODELS_KV_CACHE_H_
#define KITTY_MODELS_KV_CACHE_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"
#include "kernels/kitty/kv_cache.h"
#include "kernels/kitty/kv_format.h"

namespace kitty::models {

// Which pool slots one sequence uses, as the block manager reports them, plus its counters
// BEFORE the current step. `k_pages` / `v_pages` already include the pages that seal during
// this step (the block manager allocates them ahead of the forward pass).
struct SequenceKvSlots {
  int32_t sink_block = -1;
  int32_t tail_slot = -1;
  std::vector<int32_t> k_pages;
  std::vector<int32_t> v_pages;
  kernels::SeqKvCounters counters;
};

// Number of tokens a sequence holds according to its counters.
int32_t CachedTokens(const kernels::KvCacheSpec& spec, const kernels::SeqKvCounters& c);

class KvCache {
 public:
  KvCache(const kernels::KvCacheSpec& spec, int num_layers, int32_t num_k_pages,
          int32_t num_v_pages, int32_t num_sink_blocks, int32_t num_tail_slots);
  KvCache(const KvCache&) = delete;
  KvCache& operator=(const KvCache&) = delete;

  const kernels::KvCacheSpec& spec() const { return spec_; }
  int num_layers() const { return num_layers_; }
  int32_t num_k_pages() const { return num_k_pages_; }
  int32_t num_v_pages() const { return num_v_pages_; }
  int32_t num_sink_blocks() const { return num_sink_blocks_; }
  int32_t num_tail_slots() const { return num_tail_slots_; }

  // Per-unit sizes (all layers together), for the block manager's stats and sizing.
  int64_t k_page_bytes_all_layers() const { return k_page_bytes_ * num_layers_; }
  int64_t v_page_bytes_all_layers() const { return v_page_bytes_ * num_layers_; }
  int64_t sink_block_bytes_all_layers() const { return sink_floats_ * 4 * num_layers_; }
  int64_t tail_slot_bytes_all_layers() const { return tail_floats_ * 4 * num_layers_; }
  int64_t total_bytes() const;

  // Views of one sequence in one layer. REQUIRES: the slots are valid ids of this cache.
  kernels::SeqKvView View(int layer, const SequenceKvSlots& seq,
                          std::vector<const uint8_t*>* k_ptrs,
                          std::vector<const uint8_t*>* v_ptrs) const;
  kernels::SeqKvBuffers Buffers(int layer, const SequenceKvSlots& seq,
                                std::vector<uint8_t*>* k_ptrs, std::vector<uint8_t*>* v_ptrs);

  // Copy-on-write jobs recorded by the block manager (fork): whole sink block / tail slot.
  void CopySinkBlock(int32_t src, int32_t dst);
  void CopyTailSlot(int32_t src, int32_t dst);

 private:
  float* sink(int layer, int32_t block);
  float* tail(int layer, int32_t slot);
  uint8_t* k_page(int layer, int32_t page);
  uint8_t* v_page(int layer, int32_t page);

  kernels::KvCacheSpec spec_;
  int num_layers_;
  int32_t num_k_pages_, num_v_pages_, num_sink_blocks_, num_tail_slots_;
  int64_t k_page_bytes_, v_page_bytes_;  // one layer
  int64_t sink_floats_, tail_floats_;    // one layer
  std::vector<uint8_t> k_pages_;
  std::vector<uint8_t> v_pages_;
  std::vector<float> sinks_;
  std::vector<float> tails_;
};

// A self-contained cache for one sequence at a time with a trivial allocator (ids 0, 1, 2, ...),
// for offline tools that run one sequence (kitty-eval) and for tests. The engine uses KvCache
// with the block manager instead.
class SingleSequenceKv {
 public:
  SingleSequenceKv(const kernels::KvCacheSpec& spec, int num_layers, int32_t max_tokens);
  // Makes sure the pages that seal while appending `n` more tokens exist in `slots()`.
  void Reserve(int32_t n);
  // Record the counters after a forward step.
  void Advance(int32_t n);
  void Reset();
  SequenceKvSlots& slots() { return slots_; }
  KvCache& cache() { return cache_; }
  int32_t num_tokens() const { return CachedTokens(cache_.spec(), slots_.counters); }

 private:
  KvCache cache_;
  SequenceKvSlots slots_;
};

}  // namespace kitty::models

#endif  // KITTY_MODELS_KV_CACHE_H_
