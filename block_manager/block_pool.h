// File: block_manager/block_pool.h
// -----------------------------------------------------------------------------
// BlockPool: metadata of one fixed pool of units (K pages, V pages, sink blocks or tail
// slots): an explicit reference count per unit, an intrusive LRU free queue, and the prefix
// cache hash a unit may carry. It holds no memory of the units themselves ("a block just holds
// metadata", TensorRT-LLM kvCacheManager.h); ids index the device pool tensors.
//
// Free queue (vLLM FreeKVCacheBlockQueue): a doubly linked list threaded through the unit
// array, so removing a unit from the middle (a prefix-cache hit on a free unit) is O(1).
//
//   head ──> [evicted first] <──> ... <──> [freed last] <── tail
//
// - At construction every unit is free, in id order (so allocation hands out 0, 1, 2, ...).
// - A unit whose ref count drops to 0 is appended at the tail, hash kept: it stays findable.
// - Allocation pops the head; if that unit carries a hash, the caller evicts its cache entry.
// - A ref on a free unit (a cache hit) unlinks it.
//
// States: used (ref_count > 0), free (ref_count == 0, no hash), cached (ref_count == 0, hash).
// Invariant: a unit is in the free queue iff its ref count is 0.
//
// Thread safety: none. Owned by BlockManager, which runs on the single engine thread.
#ifndef KITTY_BLOCK_MANAGER_BLOCK_POOL_H_
#define KITTY_BLOCK_MANAGER_BLOCK_POOL_H_

#include <cstdint>
#include <vector>

#include "block_manager/prefix_hash.h"

namespace kitty::block_manager {

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;
  BlockPool(BlockPool&&) = default;
  BlockPool& operator=(BlockPool&&) = default;

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  // Units in the free queue: plain free plus cached (both can be allocated).
  int32_t num_free_queue_blocks() const { return num_free_queue_; }
  // Units in the free queue that still carry a prefix-cache hash (evictable).
  int32_t num_cached_blocks() const { return num_cached_; }
  int32_t num_used_blocks() const { return num_blocks() - num_free_queue_; }

  int32_t ref_count(int32_t id) const;
  bool has_hash(int32_t id) const;
  // REQUIRES: has_hash(id).
  const BlockHash& hash(int32_t id) const;

  // Pops the head of the free queue and sets its ref count to 1. The unit keeps its hash: the
  // caller evicts the cache entry (and calls ClearHash). REQUIRES: num_free_queue_blocks() > 0.
  int32_t PopFree();
  // Takes one reference; a unit with ref count 0 leaves the free queue (cache hit).
  void IncRef(int32_t id);
  // Drops one reference; at 0 the unit is appended at the free queue's tail (hash kept).
  // REQUIRES: ref_count(id) > 0.
  void DecRef(int32_t id);

  // REQUIRES: !has_hash(id).
  void SetHash(int32_t id, const BlockHash& hash);
  // REQUIRES: has_hash(id).
  void ClearHash(int32_t id);

  // The free queue, head (next to be allocated) first. O(n): tests and debugging.
  std::vector<int32_t> FreeQueue() const;

  // Walks the free queue: links consistent, each unit once, exactly the units with ref count 0,
  // counters match. KITTY_CHECK on violation.
  void CheckInvariants() const;

 private:
  static constexpr int32_t kNil = -1;

  struct Block {
    int32_t ref_count = 0;
    int32_t prev = kNil;  // free queue links; meaningful only while ref_count == 0
    int32_t next = kNil;
    bool has_hash = false;
    BlockHash hash;
  };

  void CheckId(int32_t id) const;
  void PushBack(int32_t id);
  void Unlink(int32_t id);

  std::vector<Block> blocks_;  // sized once
  int32_t head_ = kNil;
  int32_t tail_ = kNil;
  int32_t num_free_queue_ = 0;
  int32_t num_cached_ = 0;
};

}  // namespace kitty::block_manager

#endif  // KITTY_BLOCK_MANAGER_BLOCK_POOL_H_
