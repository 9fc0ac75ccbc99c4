#include "models/kv_cache.h"

#include <cstring>

#include "base/status_macros.h"

namespace kitty::models {

using kernels::KvCacheSpec;

int32_t CachedTokens(const KvCacheSpec& spec, const kernels::SeqKvCounters& c) {
  return c.sink_tokens + KvCacheSpec::kPageTokens * c.num_k_pages + c.k_tail_tokens;
}

KvCache::KvCache(const KvCacheSpec& spec, int num_layers, int32_t num_k_pages, int32_t num_v_pages,
                 int32_t num_sink_blocks, int32_t num_tail_slots)
    : spec_(spec),
      num_layers_(num_layers),
      num_k_pages_(num_k_pages),
      num_v_pages_(num_v_pages),
      num_sink_blocks_(num_sink_blocks),
      num_tail_slots_(num_tail_slots),
      k_page_bytes_(static_cast<int64_t>(kernels::KPageBytes(spec))),
      v_page_bytes_(static_cast<int64_t>(kernels::VPageBytes(spec))),
      sink_floats_(static_cast<int64_t>(kernels::SinkBlockBytes(spec, kernels::DType::kFloat32)) /
                   4),
      tail_floats_(static_cast<int64_t>(kernels::TailSlotBytes(spec, kernels::DType::kFloat32)) /
                   4) {
  k_pages_.resize(static_cast<size_t>(num_layers) * num_k_pages * k_page_bytes_);
  v_pages_.resize(static_cast<size_t>(num_layers) * num_v_pages * v_page_bytes_);
  sinks_.resize(static_cast<size_t>(num_layers) * num_sink_blocks * sink_floats_);
  tails_.resize(static_cast<size_t>(num_layers) * num_tail_slots * tail_floats_);
}

int64_t KvCache::total_bytes() const {
  return static_cast<int64_t>(k_pages_.size() + v_pages_.size()) +
         4 * static_cast<int64_t>(sinks_.size() + tails_.size());
}

float* KvCache::sink(int layer, int32_t block) {
  KITTY_DCHECK(block >= 0 && block < num_sink_blocks_);
  return sinks_.data() + (static_cast<int64_t>(layer) * num_sink_blocks_ + block) * sink_floats_;
}
float* KvCache::tail(int layer, int32_t slot) {
  KITTY_DCHECK(slot >= 0 && slot < num_tail_slots_);
  return tails_.data() + (static_cast<int64_t>(layer) * num_tail_slots_ + slot) * tail_floats_;
}
uint8_t* KvCache::k_page(int layer, int32_t page) {
  KITTY_DCHECK(page >= 0 && page < num_k_pages_);
  return k_pages_.data() + (static_cast<int64_t>(layer) * num_k_pages_ + page) * k_page_bytes_;
}
uint8_t* KvCache::v_page(int layer, int32_t page) {
  KITTY_DCHECK(page >= 0 && page < num_v_pages_);
  return v_pages_.data() + (static_cast<int64_t>(layer) * num_v_pages_ + page) * v_page_bytes_;
}

kernels::SeqKvBuffers KvCache::Buffers(int layer, const SequenceKvSlots& seq,
                                       std::vector<uint8_t*>* k_ptrs,
                                       std::vector<uint8_t*>* v_ptrs) {
  const int64_t sink_half = sink_floats_ / 2;
  const int64_t k_tail_floats =
      static_cast<int64_t>(spec_.num_kv_heads) * spec_.k_tail_capacity() * spec_.head_dim;
  k_ptrs->clear();
  v_ptrs->clear();
  for (int32_t p : seq.k_pages) k_ptrs->push_back(k_page(layer, p));
  for (int32_t p : seq.v_pages) v_ptrs->push_back(v_page(layer, p));
  kernels::SeqKvBuffers b;
  float* s = sink(layer, seq.sink_block);
  float* t = tail(layer, seq.tail_slot);
  b.sink_k = s;
  b.sink_v = s + sink_half;
  b.k_tail = t;
  b.v_tail = t + k_tail_floats;
  b.k_pages = absl::MakeConstSpan(*k_ptrs);
  b.v_pages = absl::MakeConstSpan(*v_ptrs);
  return b;
}

kernels::SeqKvView KvCache::View(int layer, const SequenceKvSlots& seq,
                                 std::vector<const uint8_t*>* k_ptrs,
                                 std::vector<const uint8_t*>* v_ptrs) const {
  auto* self = const_cast<KvCache*>(this);
  const int64_t sink_half = sink_floats_ / 2;
  const int64_t k_tail_floats =
      static_cast<int64_t>(spec_.num_kv_heads) * spec_.k_tail_capacity() * spec_.head_dim;
  const kernels::SeqKvCounters& c = seq.counters;
  k_ptrs->clear();
  v_ptrs->clear();
  for (int32_t i = 0; i < c.num_k_pages; ++i)
    k_ptrs->push_back(self->k_page(layer, seq.k_pages[i]));
  for (int32_t i = 0; i < c.num_v_pages; ++i)
    v_ptrs->push_back(self->v_page(layer, seq.v_pages[i]));
  kernels::SeqKvView v;
  const float* s = self->sink(layer, seq.sink_block);
  const float* t = self->tail(layer, seq.tail_slot);
  v.sink_tokens = c.sink_tokens;
  v.sink_k = s;
  v.sink_v = s + sink_half;
  v.k_pages = absl::MakeConstSpan(*k_ptrs);
  v.v_pages = absl::MakeConstSpan(*v_ptrs);
  v.k_tail_tokens = c.k_tail_tokens;
  v.k_tail = t;
  v.v_tail_tokens = c.v_tail_tokens;
  v.v_tail = t + k_tail_floats;
  return v;
}

void KvCache::CopySinkBlock(int32_t src, int32_t dst) {
  for (int l = 0; l < num_layers_; ++l) {
    std::memcpy(sink(l, dst), sink(l, src), sink_floats_ * sizeof(float));
  }
}

void KvCache::CopyTailSlot(int32_t src, int32_t dst) {
  for (int l = 0; l < num_layers_; ++l) {
    std::memcpy(tail(l, dst), tail(l, src), tail_floats_ * sizeof(float));
  }
}

// ---- SingleSequenceKv -------------------------------------------------------------------------

namespace {
int32_t PagesFor(int32_t max_tokens, int sink) {
  const int32_t after_sink = max_tokens > sink ? max_tokens - sink : 0;
  return after_sink / KvCacheSpec::kPageTokens + 1;
}
}  // namespace

SingleSequenceKv::SingleSequenceKv(const KvCacheSpec& spec, int num_layers, int32_t max_tokens)
    : cache_(spec, num_layers, PagesFor(max_tokens, spec.sink_tokens),
             PagesFor(max_tokens, spec.sink_tokens), 1, 1) {
  Reset();
}

void SingleSequenceKv::Reset() {
  slots_ = SequenceKvSlots{};
  slots_.sink_block = 0;
  slots_.tail_slot = 0;
}

void SingleSequenceKv::Reserve(int32_t n) {
  const kernels::SeqKvCounters after =
      kernels::AdvanceKvCounters(cache_.spec(), slots_.counters, n);
  KITTY_CHECK_LE(after.num_k_pages, cache_.num_k_pages()) << "sequence longer than reserved";
  while (static_cast<int32_t>(slots_.k_pages.size()) < after.num_k_pages) {
    slots_.k_pages.push_back(static_cast<int32_t>(slots_.k_pages.size()));
  }
  while (static_cast<int32_t>(slots_.v_pages.size()) < after.num_v_pages) {
    slots_.v_pages.push_back(static_cast<int32_t>(slots_.v_pages.size()));
  }
}

void SingleSequenceKv::Advance(int32_t n) {
  slots_.counters = kernels::AdvanceKvCounters(cache_.spec(), slots_.counters, n);
}

}  // namespace kitty::models
