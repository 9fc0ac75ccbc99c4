#include "block_manager/block_pool.h"

#include "base/status_macros.h"

namespace kitty::block_manager {

BlockPool::BlockPool(int32_t num_blocks) {
  KITTY_CHECK_GE(num_blocks, 0) << "negative pool size";
  blocks_.resize(num_blocks);
  for (int32_t id = 0; id < num_blocks; ++id) PushBack(id);
}

void BlockPool::CheckId(int32_t id) const {
  KITTY_CHECK(id >= 0 && id < num_blocks())
      << "unit id " << id << " out of range [0, " << num_blocks() << ")";
}

int32_t BlockPool::ref_count(int32_t id) const {
  CheckId(id);
  return blocks_[id].ref_count;
}

bool BlockPool::has_hash(int32_t id) const {
  CheckId(id);
  return blocks_[id].has_hash;
}

const BlockHash& BlockPool::hash(int32_t id) const {
  CheckId(id);
  KITTY_CHECK(blocks_[id].has_hash) << "unit " << id << " carries no hash";
  return blocks_[id].hash;
}

void BlockPool::PushBack(int32_t id) {
  Block& b = blocks_[id];
  b.prev = tail_;
  b.next = kNil;
  if (tail_ == kNil) {
    head_ = id;
  } else {
    blocks_[tail_].next = id;
  }
  tail_ = id;
  ++num_free_queue_;
  if (b.has_hash) ++num_cached_;
}

void BlockPool::Unlink(int32_t id) {
  Block& b = blocks_[id];
  if (b.prev == kNil) {
    head_ = b.next;
  } else {
    blocks_[b.prev].next = b.next;
  }
  if (b.next == kNil) {
    tail_ = b.prev;
  } else {
    blocks_[b.next].prev = b.prev;
  }
  b.prev = b.next = kNil;
  --num_free_queue_;
  if (b.has_hash) --num_cached_;
}

int32_t BlockPool::PopFree() {
  KITTY_CHECK_GT(num_free_queue_, 0) << "PopFree on an empty free queue";
  const int32_t id = head_;
  Unlink(id);
  blocks_[id].ref_count = 1;
  return id;
}

void BlockPool::IncRef(int32_t id) {
  CheckId(id);
  Block& b = blocks_[id];
  if (b.ref_count == 0) Unlink(id);
  ++b.ref_count;
}

void BlockPool::DecRef(int32_t id) {
  CheckId(id);
  Block& b = blocks_[id];
  KITTY_CHECK_GT(b.ref_count, 0) << "DecRef of free unit " << id << " (double free)";
  if (--b.ref_count == 0) PushBack(id);
}

void BlockPool::SetHash(int32_t id, const BlockHash& hash) {
  CheckId(id);
  Block& b = blocks_[id];
  KITTY_CHECK(!b.has_hash) << "unit " << id << " already carries hash " << b.hash;
  b.has_hash = true;
  b.hash = hash;
  if (b.ref_count == 0) ++num_cached_;
}

void BlockPool::ClearHash(int32_t id) {
  CheckId(id);
  Block& b = blocks_[id];
  KITTY_CHECK(b.has_hash) << "ClearHash on unit " << id << " without hash";
  b.has_hash = false;
  b.hash = BlockHash{};
  if (b.ref_count == 0) --num_cached_;
}

std::vector<int32_t> BlockPool::FreeQueue() const {
  std::vector<int32_t> out;
  out.reserve(num_free_queue_);
  for (int32_t id = head_; id != kNil; id = blocks_[id].next) out.push_back(id);
  return out;
}

void BlockPool::CheckInvariants() const {
  std::vector<bool> seen(blocks_.size(), false);
  int32_t count = 0;
  int32_t cached = 0;
  int32_t prev = kNil;
  for (int32_t id = head_; id != kNil; id = blocks_[id].next) {
    CheckId(id);
    KITTY_CHECK(!seen[id]) << "unit " << id << " twice in the free queue (cycle)";
    seen[id] = true;
    const Block& b = blocks_[id];
    KITTY_CHECK_EQ(b.ref_count, 0) << "unit " << id << " in the free queue while referenced";
    KITTY_CHECK_EQ(b.prev, prev) << "broken prev link at unit " << id;
    if (b.has_hash) ++cached;
    prev = id;
    ++count;
  }
  KITTY_CHECK_EQ(tail_, prev) << "free queue tail is not the last unit";
  KITTY_CHECK_EQ(count, num_free_queue_) << "free queue length counter";
  KITTY_CHECK_EQ(cached, num_cached_) << "cached unit counter";
  for (int32_t id = 0; id < num_blocks(); ++id) {
    KITTY_CHECK_GE(blocks_[id].ref_count, 0) << "negative ref count of unit " << id;
    KITTY_CHECK_EQ(blocks_[id].ref_count == 0, static_cast<bool>(seen[id]))
        << "unit " << id << " with ref count " << blocks_[id].ref_count
        << " is in the free queue: " << seen[id];
  }
}

}  // namespace kitty::block_manager
