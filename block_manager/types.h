// File: block_manager/types.h
// -----------------------------------------------------------------------------
// Distinct id types of the block manager. Each pool hands out its own kind of id so that a K
// page id can never be passed where a V page, sink block or tail slot is expected:
//
//   KPageId      sealed K page     (pool tensor [layers][num_k_pages][k_page_bytes])
//   VPageId      sealed V page     (pool tensor [layers][num_v_pages][v_page_bytes])
//   SinkBlockId  S-token fp sink   (pool tensor [layers][num_sink_blocks][sink_block_bytes])
//   TailSlotId   fp K tail + V tail of one sequence
//   SeqId        one sequence (a request, or one of its n>1 samples)
//
// A page id names the same slot in every layer, so one allocation serves all layers.
#ifndef KITTY_BLOCK_MANAGER_TYPES_H_
#define KITTY_BLOCK_MANAGER_TYPES_H_

#include <compare>
#include <cstdint>
#include <ostream>
#include <utility>

namespace kitty::block_manager {

// A strongly typed integer id. `value` is the index into its pool (or the caller's sequence
// number for SeqId); -1 means "none".
template <typename Tag, typename Rep = int32_t>
struct StrongId {
  Rep value = -1;

  constexpr StrongId() = default;
  constexpr explicit StrongId(Rep v) : value(v) {}

  constexpr bool valid() const { return value >= 0; }

  friend constexpr bool operator==(StrongId a, StrongId b) = default;
  friend constexpr auto operator<=>(StrongId a, StrongId b) = default;

  template <typename H>
  friend H AbslHashValue(H h, StrongId id) {
    return H::combine(std::move(h), id.value);
  }
  friend std::ostream& operator<<(std::ostream& os, StrongId id) {
    return os << Tag::kPrefix << id.value;
  }
};

struct KPageTag {
  static constexpr const char* kPrefix = "K";
};
struct VPageTag {
  static constexpr const char* kPrefix = "V";
};
struct SinkBlockTag {
  static constexpr const char* kPrefix = "sink";
};
struct TailSlotTag {
  static constexpr const char* kPrefix = "tail";
};
struct SeqTag {
  static constexpr const char* kPrefix = "seq";
};

using KPageId = StrongId<KPageTag>;
using VPageId = StrongId<VPageTag>;
using SinkBlockId = StrongId<SinkBlockTag>;
using TailSlotId = StrongId<TailSlotTag>;
using SeqId = StrongId<SeqTag, int64_t>;

}  // namespace kitty::block_manager

#endif  // KITTY_BLOCK_MANAGER_TYPES_H_
