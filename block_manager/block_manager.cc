#include "block_manager/block_manager.h"

#include <algorithm>
#include <limits>
#include <ostream>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace kitty::block_manager {

std::ostream& operator<<(std::ostream& os, const SeqKvCounters& c) {
  return os << "{sink=" << c.sink_tokens << " pk=" << c.num_k_pages << " ck=" << c.k_tail_tokens
            << " pv=" << c.num_v_pages << " cv=" << c.v_tail_tokens << " L=" << c.num_tokens << "}";
}

absl::StatusOr<BlockManagerConfig> SizeBlockManager(int64_t budget_bytes, int32_t max_num_seqs,
                                                    const BlockManagerConfig& unit_sizes,
                                                    int32_t pages_per_seq) {
  const BlockManagerConfig& u = unit_sizes;
  if (max_num_seqs <= 0 || u.k_page_bytes <= 0 || u.v_page_bytes <= 0 || u.sink_block_bytes <= 0 ||
      u.tail_slot_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("KV cache sizing needs positive max_num_seqs (", max_num_seqs,
                     ") and unit sizes (K page ", u.k_page_bytes, ", V page ", u.v_page_bytes,
                     ", sink ", u.sink_block_bytes, ", tail ", u.tail_slot_bytes, " bytes)"));
  }
  const int64_t per_seq_bytes = u.sink_block_bytes + u.tail_slot_bytes;
  const int64_t pair_bytes = u.k_page_bytes + u.v_page_bytes;
  const int64_t seqs = std::min<int64_t>(
      max_num_seqs, budget_bytes / (per_seq_bytes + std::max(1, pages_per_seq) * pair_bytes));
  if (seqs <= 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "KV cache budget of ", budget_bytes, " bytes cannot hold one sequence (", per_seq_bytes,
        " bytes of sink and tails) with one K+V page pair (", pair_bytes, " bytes)"));
  }
  const int64_t pages = (budget_bytes - seqs * per_seq_bytes) / pair_bytes;
  BlockManagerConfig out = u;
  out.num_sink_blocks = out.num_tail_slots = static_cast<int32_t>(seqs);
  out.num_k_pages = out.num_v_pages =
      static_cast<int32_t>(std::min<int64_t>(pages, std::numeric_limits<int32_t>::max()));
  return out;
}

int32_t PagesForTokens(int32_t num_tokens, const BlockManagerConfig& geometry) {
  const SeqKvCounters c = PlanAppend({}, std::max(0, num_tokens), geometry).counters;
  return std::max(c.num_k_pages, c.num_v_pages);
}

int32_t MaxSequenceTokens(const BlockManagerConfig& config) {
  if (config.num_sink_blocks <= 0 || config.num_tail_slots <= 0) return 0;
  const int64_t S = config.sink_tokens, P = config.page_tokens, W = config.v_window_tokens;
  // K page i seals at token S + P (i + 1), V page i at S + W + P (i + 1) (PlanAppend): the
  // last token before page num_k_pages (num_v_pages) would seal.
  const int64_t k_limit = S + P * (int64_t{config.num_k_pages} + 1) - 1;
  const int64_t v_limit = S + W + P * (int64_t{config.num_v_pages} + 1) - 1;
  return static_cast<int32_t>(
      std::min<int64_t>({k_limit, v_limit, std::numeric_limits<int32_t>::max()}));
}

AppendPlan PlanAppend(const SeqKvCounters& counters, int32_t num_new_tokens,
                      const BlockManagerConfig& config) {
  KITTY_CHECK_GE(num_new_tokens, 0);
  const int32_t S = config.sink_tokens;
  const int32_t P = config.page_tokens;
  const int32_t W = config.v_window_tokens;
  AppendPlan plan{counters};
  SeqKvCounters& c = plan.counters;
  const int32_t to_sink = std::min(num_new_tokens, S - c.sink_tokens);
  c.sink_tokens += to_sink;
  const int32_t n = num_new_tokens - to_sink;
  if (n > 0) {
    const int64_t k = static_cast<int64_t>(c.k_tail_tokens) + n;
    plan.num_new_k_pages = static_cast<int32_t>(k / P);
    c.k_tail_tokens = static_cast<int32_t>(k % P);
    const int64_t v = static_cast<int64_t>(c.v_tail_tokens) + n;
    plan.num_new_v_pages = v >= P + W ? static_cast<int32_t>(1 + (v - P - W) / P) : 0;
    c.v_tail_tokens = static_cast<int32_t>(v - static_cast<int64_t>(P) * plan.num_new_v_pages);
    c.num_k_pages += plan.num_new_k_pages;
    c.num_v_pages += plan.num_new_v_pages;
  }
  c.num_tokens += num_new_tokens;
  return plan;
}

BlockManager::BlockManager(const BlockManagerConfig& config)
    : config_(config),
      k_pool_(config.num_k_pages),
      v_pool_(config.num_v_pages),
      sink_pool_(config.num_sink_blocks),
      tail_pool_(config.num_tail_slots) {
  KITTY_CHECK_GT(config.sink_tokens, 0) << "the sink must hold at least one token";
  KITTY_CHECK_GT(config.page_tokens, 0);
  KITTY_CHECK_GE(config.v_window_tokens, 0);
}

BlockManager::SequenceState& BlockManager::GetState(SeqId seq) {
  auto it = seqs_.find(seq);
  KITTY_CHECK(it != seqs_.end()) << "unknown sequence " << seq;
  return *it->second;
}

const SequencePages& BlockManager::Get(SeqId seq) const {
  auto it = seqs_.find(seq);
  KITTY_CHECK(it != seqs_.end()) << "unknown sequence " << seq;
  return it->second->pages;
}

// ---- allocation and eviction -------------------------------------------------------------------

void BlockManager::EvictSegment(const BlockHash& hash) {
  auto it = segment_cache_.find(hash);
  KITTY_CHECK(it != segment_cache_.end()) << "hashed page without a cache entry " << hash;
  // The partner page keeps its place (free queue or in use) as a plain page.
  k_pool_.ClearHash(it->second.k.value);
  v_pool_.ClearHash(it->second.v.value);
  segment_cache_.erase(it);
  ++prefix_cache_evictions_;
}

KPageId BlockManager::AllocateKPage() {
  const int32_t id = k_pool_.PopFree();
  if (k_pool_.has_hash(id)) {
    const BlockHash hash = k_pool_.hash(id);
    EvictSegment(hash);
  }
  return KPageId(id);
}

VPageId BlockManager::AllocateVPage() {
  const int32_t id = v_pool_.PopFree();
  if (v_pool_.has_hash(id)) {
    const BlockHash hash = v_pool_.hash(id);
    EvictSegment(hash);
  }
  return VPageId(id);
}

SinkBlockId BlockManager::AllocateSinkBlock() {
  const int32_t id = sink_pool_.PopFree();
  if (sink_pool_.has_hash(id)) {
    const BlockHash hash = sink_pool_.hash(id);
    auto it = sink_cache_.find(hash);
    KITTY_CHECK(it != sink_cache_.end() && it->second.value == id)
        << "hashed sink block " << id << " without its cache entry";
    sink_cache_.erase(it);
    sink_pool_.ClearHash(id);
    ++prefix_cache_evictions_;
  }
  return SinkBlockId(id);
}

// ---- admission ---------------------------------------------------------------------------------

BlockManager::Lookup BlockManager::LookupPrefix(absl::Span<const int32_t> prompt,
                                                const BlockHash& root) const {
  // Usable hit: S + P·j <= prompt_len − P. Below that the suffix would not refill the tails.
  //
  //   0      S        S+P      S+P·j               prompt_len−P      prompt_len
  //   | sink | seg 0  | ...    |      recomputed suffix (>= P tokens)       |
  const int64_t S = config_.sink_tokens;
  const int64_t P = config_.page_tokens;
  const int64_t limit = static_cast<int64_t>(prompt.size()) - P;
  Lookup lookup;
  if (S > limit) return lookup;
  lookup.sink_hash = HashSegment(root, prompt.subspan(0, S));
  auto sink_it = sink_cache_.find(lookup.sink_hash);
  if (sink_it == sink_cache_.end()) return lookup;
  lookup.sink = sink_it->second;
  BlockHash parent = lookup.sink_hash;
  for (int64_t j = 0; S + P * (j + 1) <= limit; ++j) {
    const BlockHash hash = HashSegment(parent, prompt.subspan(S + P * j, P));
    auto it = segment_cache_.find(hash);
    if (it == segment_cache_.end()) break;
    lookup.segments.push_back(it->second);
    lookup.segment_hashes.push_back(hash);
    parent = hash;
  }
  return lookup;
}

bool BlockManager::HasSequenceSlot(const Lookup& lookup) const {
  return tail_pool_.num_free_queue_blocks() > 0 &&
         (lookup.sink.has_value() || sink_pool_.num_free_queue_blocks() > 0);
}

SeqKvCounters BlockManager::CountersAfterHit(const Lookup& lookup) const {
  if (!lookup.sink.has_value()) return {};
  const int32_t j = static_cast<int32_t>(lookup.segments.size());
  return {config_.sink_tokens, j, 0, j, 0, config_.sink_tokens + config_.page_tokens * j};
}

std::optional<int32_t> BlockManager::AllocateSequence(SeqId seq,
                                                      absl::Span<const int32_t> prompt_token_ids,
                                                      std::string_view cache_salt) {
  KITTY_CHECK(!Contains(seq)) << "AllocateSequence of existing sequence " << seq;
  const bool caching = config_.enable_prefix_caching;
  BlockHash root;
  Lookup lookup;
  if (caching) {
    root = HashSalt(cache_salt);
    lookup = LookupPrefix(prompt_token_ids, root);
  }
  if (!HasSequenceSlot(lookup)) return std::nullopt;

  auto state = std::make_unique<SequenceState>();
  state->root = root;
  SequencePages& pages = state->pages;
  SeqKvCounters& c = pages.counters;
  c = CountersAfterHit(lookup);
  // References on hits first, then new units: popping can never evict what we just hit.
  if (lookup.sink.has_value()) {
    sink_pool_.IncRef(lookup.sink->value);
    pages.sink = *lookup.sink;
    state->sink_hash = lookup.sink_hash;
    for (const SegmentEntry& e : lookup.segments) {
      k_pool_.IncRef(e.k.value);
      v_pool_.IncRef(e.v.value);
      pages.k_pages.push_back(e.k);
      pages.v_pages.push_back(e.v);
    }
    state->segment_hashes = std::move(lookup.segment_hashes);
  } else {
    pages.sink = AllocateSinkBlock();
  }
  pages.tail = TailSlotId(tail_pool_.PopFree());
  pages.num_tokens = c.num_tokens;
  pages.num_cached_tokens = c.num_tokens;
  if (caching) {
    prefix_cache_queries_tokens_ += static_cast<int64_t>(prompt_token_ids.size());
    prefix_cache_hit_tokens_ += pages.num_cached_tokens;
  }
  const int32_t cached = pages.num_cached_tokens;
  seqs_.emplace(seq, std::move(state));
  return cached;
}

std::optional<int32_t> BlockManager::PlanAdmission(absl::Span<const int32_t> prompt_token_ids,
                                                   std::string_view cache_salt,
                                                   int32_t max_new_tokens) const {
  Lookup lookup;
  if (config_.enable_prefix_caching) lookup = LookupPrefix(prompt_token_ids, HashSalt(cache_salt));
  if (!HasSequenceSlot(lookup)) return std::nullopt;
  const SeqKvCounters c = CountersAfterHit(lookup);
  int64_t k_free = k_pool_.num_free_queue_blocks();
  int64_t v_free = v_pool_.num_free_queue_blocks();
  for (const SegmentEntry& e : lookup.segments) {  // hit pages leave the free queue
    k_free -= k_pool_.ref_count(e.k.value) == 0;
    v_free -= v_pool_.ref_count(e.v.value) == 0;
  }
  const int32_t rest = static_cast<int32_t>(prompt_token_ids.size()) - c.num_tokens;
  const AppendPlan plan = PlanAppend(c, std::max(0, std::min(rest, max_new_tokens)), config_);
  if (plan.num_new_k_pages > k_free || plan.num_new_v_pages > v_free) return std::nullopt;
  return c.num_tokens;
}

// ---- appending ---------------------------------------------------------------------------------

bool BlockManager::CanAppend(absl::Span<const std::pair<SeqId, int32_t>> requests) const {
  absl::flat_hash_map<SeqId, SeqKvCounters> planned;
  int64_t k_needed = 0;
  int64_t v_needed = 0;
  for (const auto& [seq, num_new_tokens] : requests) {
    auto it = planned.find(seq);
    const SeqKvCounters& from = it != planned.end() ? it->second : Get(seq).counters;
    const AppendPlan plan = PlanAppend(from, num_new_tokens, config_);
    k_needed += plan.num_new_k_pages;
    v_needed += plan.num_new_v_pages;
    planned[seq] = plan.counters;
  }
  return k_needed <= k_pool_.num_free_queue_blocks() && v_needed <= v_pool_.num_free_queue_blocks();
}

std::optional<std::vector<PackJob>> BlockManager::AppendTokens(
    SeqId seq, absl::Span<const int32_t> token_ids) {
  SequenceState& state = GetState(seq);
  SequencePages& pages = state.pages;
  SeqKvCounters& c = pages.counters;
  const AppendPlan plan = PlanAppend(c, static_cast<int32_t>(token_ids.size()), config_);
  if (plan.num_new_k_pages > k_pool_.num_free_queue_blocks() ||
      plan.num_new_v_pages > v_pool_.num_free_queue_blocks()) {
    return std::nullopt;
  }
  const bool caching = config_.enable_prefix_caching;
  const int32_t S = config_.sink_tokens;
  const int32_t P = config_.page_tokens;
  const int32_t W = config_.v_window_tokens;
  std::vector<PackJob> jobs;
  jobs.reserve(plan.num_new_k_pages + plan.num_new_v_pages);
  // The literal per-token rule (KITTY.md §1.2/§1.4, tails as linear buffers §10.3); the
  // closed form above only sized the allocation and is checked against it below.
  for (const int32_t token : token_ids) {
    ++c.num_tokens;
    if (caching) state.open_segment_tokens.push_back(token);
    if (c.sink_tokens < S) {
      if (++c.sink_tokens == S && caching) {
        state.sink_hash = HashSegment(state.root, state.open_segment_tokens);
        state.open_segment_tokens.clear();
        pending_.push_back({seq, *state.sink_hash, /*is_sink=*/true, pages.sink.value, -1});
      }
      continue;
    }
    if (++c.k_tail_tokens == P) {
      const KPageId k = AllocateKPage();
      jobs.push_back({PackJob::kKey, seq, c.num_k_pages, k.value});
      pages.k_pages.push_back(k);
      ++c.num_k_pages;
      c.k_tail_tokens = 0;
      if (caching) {
        const BlockHash& parent =
            state.segment_hashes.empty() ? *state.sink_hash : state.segment_hashes.back();
        state.segment_hashes.push_back(HashSegment(parent, state.open_segment_tokens));
        state.open_segment_tokens.clear();
      }
    }
    if (++c.v_tail_tokens == P + W) {
      const VPageId v = AllocateVPage();
      const int32_t i = c.num_v_pages;
      jobs.push_back({PackJob::kValue, seq, i, v.value});
      pages.v_pages.push_back(v);
      ++c.num_v_pages;
      c.v_tail_tokens = W;
      if (caching) {
        pending_.push_back(
            {seq, state.segment_hashes[i], /*is_sink=*/false, pages.k_pages[i].value, v.value});
      }
    }
  }
  KITTY_CHECK(c == plan.counters) << "append rule " << c << " disagrees with closed form "
                                  << plan.counters;
  pages.num_tokens = c.num_tokens;
  return jobs;
}

void BlockManager::CommitStep() {
  for (const PendingEntry& e : pending_) {
    if (e.is_sink) {
      // A sink computed twice (same prefix admitted in one step) keeps the first entry; the
      // duplicate block stays private and is freed as a plain block.
      if (sink_cache_.contains(e.hash)) continue;
      sink_pool_.SetHash(e.sink_or_k, e.hash);
      sink_cache_.emplace(e.hash, SinkBlockId(e.sink_or_k));
    } else {
      if (segment_cache_.contains(e.hash)) continue;
      k_pool_.SetHash(e.sink_or_k, e.hash);
      v_pool_.SetHash(e.v, e.hash);
      segment_cache_.emplace(e.hash, SegmentEntry{KPageId(e.sink_or_k), VPageId(e.v)});
    }
  }
  pending_.clear();
}

// ---- fork and free -----------------------------------------------------------------------------

std::optional<std::vector<CopyJob>> BlockManager::Fork(SeqId parent, SeqId child) {
  KITTY_CHECK(!Contains(child)) << "Fork into existing sequence " << child;
  const SequenceState& from = GetState(parent);
  const bool sink_full = from.pages.counters.sink_tokens == config_.sink_tokens;
  if (tail_pool_.num_free_queue_blocks() == 0) return std::nullopt;
  if (!sink_full && sink_pool_.num_free_queue_blocks() == 0) return std::nullopt;

  auto state = std::make_unique<SequenceState>(from);  // counters, page tables, hash chain
  SequencePages& pages = state->pages;
  std::vector<CopyJob> jobs;
  if (sink_full) {
    sink_pool_.IncRef(pages.sink.value);
  } else {
    pages.sink = AllocateSinkBlock();
    if (pages.counters.sink_tokens > 0) {
      jobs.push_back({CopyJob::kSink, from.pages.sink.value, pages.sink.value});
    }
  }
  for (KPageId k : pages.k_pages) k_pool_.IncRef(k.value);
  for (VPageId v : pages.v_pages) v_pool_.IncRef(v.value);
  pages.tail = TailSlotId(tail_pool_.PopFree());
  if (pages.counters.k_tail_tokens > 0 || pages.counters.v_tail_tokens > 0) {
    jobs.push_back({CopyJob::kTail, from.pages.tail.value, pages.tail.value});
  }
  seqs_.emplace(child, std::move(state));
  return jobs;
}

void BlockManager::Free(SeqId seq) {
  auto it = seqs_.find(seq);
  KITTY_CHECK(it != seqs_.end()) << "Free of unknown sequence " << seq;
  const SequencePages& pages = it->second->pages;
  std::erase_if(pending_, [seq](const PendingEntry& e) { return e.seq == seq; });
  // Last page first: it reaches the free queue first and is evicted first (vLLM).
  for (auto k = pages.k_pages.rbegin(); k != pages.k_pages.rend(); ++k) k_pool_.DecRef(k->value);
  for (auto v = pages.v_pages.rbegin(); v != pages.v_pages.rend(); ++v) v_pool_.DecRef(v->value);
  sink_pool_.DecRef(pages.sink.value);
  tail_pool_.DecRef(pages.tail.value);
  seqs_.erase(it);
}

// ---- stats and invariants ----------------------------------------------------------------------

namespace {

PoolStats MakePoolStats(const BlockPool& pool) {
  PoolStats s;
  s.num_total = pool.num_blocks();
  s.num_used = pool.num_used_blocks();
  s.num_cached = pool.num_cached_blocks();
  s.num_free = pool.num_free_queue_blocks() - s.num_cached;
  return s;
}

}  // namespace

BlockManagerStats BlockManager::GetStats() const {
  BlockManagerStats s;
  s.k_pages = MakePoolStats(k_pool_);
  s.v_pages = MakePoolStats(v_pool_);
  s.sink_blocks = MakePoolStats(sink_pool_);
  s.tail_slots = MakePoolStats(tail_pool_);
  s.num_sequences = num_sequences();

  auto used = [](const PoolStats& p) {
    return p.num_total > 0 ? static_cast<double>(p.num_used) / p.num_total : 0.0;
  };
  s.page_usage = std::max(used(s.k_pages), used(s.v_pages));

  s.sink_bytes_in_use = s.sink_blocks.num_used * config_.sink_block_bytes;
  s.tail_bytes_in_use = s.tail_slots.num_used * config_.tail_slot_bytes;
  s.k_page_bytes_in_use = s.k_pages.num_used * config_.k_page_bytes;
  s.v_page_bytes_in_use = s.v_pages.num_used * config_.v_page_bytes;
  s.total_bytes_in_use =
      s.sink_bytes_in_use + s.tail_bytes_in_use + s.k_page_bytes_in_use + s.v_page_bytes_in_use;

  // Token-halves: one K or one V of a token, in full precision (sinks, tails) or in pages. A
  // partial sink is private (one owner).
  int64_t partial_sinks = 0;
  int64_t fp_half_tokens = 0;
  for (const auto& [id, state] : seqs_) {
    const SeqKvCounters& c = state->pages.counters;
    s.num_logical_tokens += c.num_tokens;
    if (c.sink_tokens < config_.sink_tokens) {
      ++partial_sinks;
      fp_half_tokens += 2 * static_cast<int64_t>(c.sink_tokens);
    }
    fp_half_tokens += c.k_tail_tokens + c.v_tail_tokens;
  }
  fp_half_tokens += 2 * (s.sink_blocks.num_used - partial_sinks) * config_.sink_tokens;
  const int64_t half_tokens =
      fp_half_tokens +
      static_cast<int64_t>(s.k_pages.num_used + s.v_pages.num_used) * config_.page_tokens;
  s.num_stored_kv_elements = half_tokens * config_.elements_per_token / 2;
  // A sink block is S full-precision K and V rows: its bytes per token-half are those of every
  // full-precision row (tails too).
  const double fp_half_token_bytes =
      static_cast<double>(config_.sink_block_bytes) / (2.0 * config_.sink_tokens);
  s.stored_bytes = static_cast<int64_t>(static_cast<double>(fp_half_tokens) * fp_half_token_bytes) +
                   s.k_page_bytes_in_use + s.v_page_bytes_in_use;
  if (s.num_stored_kv_elements > 0 && s.stored_bytes > 0) {
    s.effective_bits_per_element =
        static_cast<double>(s.stored_bytes) * 8 / static_cast<double>(s.num_stored_kv_elements);
    s.compression_vs_fp16 = 16.0 / s.effective_bits_per_element;
    s.logical_compression_vs_fp16 = static_cast<double>(s.num_logical_tokens) *
                                    config_.elements_per_token * 2 /
                                    static_cast<double>(s.total_bytes_in_use);
  }
  s.prefix_cache_queries_tokens = prefix_cache_queries_tokens_;
  s.prefix_cache_hit_tokens = prefix_cache_hit_tokens_;
  s.prefix_cache_evictions = prefix_cache_evictions_;
  return s;
}

int32_t BlockManager::FreeTokenCapacity() const {
  const int64_t pairs = std::min(k_pool_.num_free_queue_blocks(), v_pool_.num_free_queue_blocks());
  return static_cast<int32_t>(
      std::min<int64_t>(pairs * config_.page_tokens, std::numeric_limits<int32_t>::max()));
}

void BlockManager::CheckInvariants() const {
  const int32_t S = config_.sink_tokens;
  const int32_t P = config_.page_tokens;
  const int32_t W = config_.v_window_tokens;
  const bool caching = config_.enable_prefix_caching;
  k_pool_.CheckInvariants();
  v_pool_.CheckInvariants();
  sink_pool_.CheckInvariants();
  tail_pool_.CheckInvariants();

  // References held by sequences, and the page index each unit holds for all its holders.
  std::vector<int32_t> k_refs(k_pool_.num_blocks(), 0), v_refs(v_pool_.num_blocks(), 0);
  std::vector<int32_t> sink_refs(sink_pool_.num_blocks(), 0);
  std::vector<int32_t> tail_refs(tail_pool_.num_blocks(), 0);
  std::vector<int32_t> k_index(k_pool_.num_blocks(), -1), v_index(v_pool_.num_blocks(), -1);
  std::vector<bool> sink_partial(sink_pool_.num_blocks(), false);
  for (const auto& [seq, state] : seqs_) {
    const SequencePages& p = state->pages;
    const SeqKvCounters& c = p.counters;
    KITTY_CHECK(c.sink_tokens >= 0 && c.sink_tokens <= S) << seq << " " << c;
    if (c.sink_tokens < S) {
      KITTY_CHECK(c.num_k_pages == 0 && c.num_v_pages == 0 && c.k_tail_tokens == 0 &&
                  c.v_tail_tokens == 0)
          << seq << " has pages or tails before its sink is full " << c;
    }
    KITTY_CHECK(c.k_tail_tokens >= 0 && c.k_tail_tokens < P) << seq << " " << c;
    KITTY_CHECK(c.v_tail_tokens >= 0 && c.v_tail_tokens < P + W) << seq << " " << c;
    KITTY_CHECK_EQ(c.num_tokens, c.sink_tokens + P * c.num_k_pages + c.k_tail_tokens)
        << seq << " K length " << c;
    KITTY_CHECK_EQ(c.num_tokens, c.sink_tokens + P * c.num_v_pages + c.v_tail_tokens)
        << seq << " V length " << c;
    KITTY_CHECK_GE(c.num_k_pages, c.num_v_pages) << seq << " V ahead of K " << c;
    KITTY_CHECK_EQ(p.num_tokens, c.num_tokens) << seq;
    KITTY_CHECK(p.num_cached_tokens >= 0 && p.num_cached_tokens <= p.num_tokens) << seq;
    KITTY_CHECK_EQ(static_cast<int32_t>(p.k_pages.size()), c.num_k_pages) << seq;
    KITTY_CHECK_EQ(static_cast<int32_t>(p.v_pages.size()), c.num_v_pages) << seq;

    KITTY_CHECK(p.sink.valid() && p.sink.value < sink_pool_.num_blocks()) << seq << p.sink;
    ++sink_refs[p.sink.value];
    if (c.sink_tokens < S) {
      sink_partial[p.sink.value] = true;
      KITTY_CHECK(!sink_pool_.has_hash(p.sink.value)) << "partial " << p.sink << " is cached";
    }
    KITTY_CHECK(p.tail.valid() && p.tail.value < tail_pool_.num_blocks()) << seq << p.tail;
    ++tail_refs[p.tail.value];
    for (int32_t i = 0; i < c.num_k_pages; ++i) {
      const int32_t id = p.k_pages[i].value;
      KITTY_CHECK(id >= 0 && id < k_pool_.num_blocks()) << seq << " " << p.k_pages[i];
      ++k_refs[id];
      KITTY_CHECK(k_index[id] == -1 || k_index[id] == i)
          << p.k_pages[i] << " held as page " << i << " and " << k_index[id];
      k_index[id] = i;
    }
    for (int32_t i = 0; i < c.num_v_pages; ++i) {
      const int32_t id = p.v_pages[i].value;
      KITTY_CHECK(id >= 0 && id < v_pool_.num_blocks()) << seq << " " << p.v_pages[i];
      ++v_refs[id];
      KITTY_CHECK(v_index[id] == -1 || v_index[id] == i)
          << p.v_pages[i] << " held as page " << i << " and " << v_index[id];
      v_index[id] = i;
    }
    if (caching) {
      KITTY_CHECK_EQ(state->sink_hash.has_value(), c.sink_tokens == S) << seq;
      KITTY_CHECK_EQ(static_cast<int32_t>(state->segment_hashes.size()), c.num_k_pages) << seq;
      KITTY_CHECK_EQ(static_cast<int32_t>(state->open_segment_tokens.size()),
                     c.sink_tokens < S ? c.sink_tokens : c.k_tail_tokens)
          << seq;
    }
  }
  for (int32_t id = 0; id < k_pool_.num_blocks(); ++id) {
    KITTY_CHECK_EQ(k_pool_.ref_count(id), k_refs[id]) << "ref count of K" << id;
  }
  for (int32_t id = 0; id < v_pool_.num_blocks(); ++id) {
    KITTY_CHECK_EQ(v_pool_.ref_count(id), v_refs[id]) << "ref count of V" << id;
  }
  for (int32_t id = 0; id < sink_pool_.num_blocks(); ++id) {
    KITTY_CHECK_EQ(sink_pool_.ref_count(id), sink_refs[id]) << "ref count of sink" << id;
    if (sink_partial[id]) KITTY_CHECK_EQ(sink_refs[id], 1) << "partial sink" << id << " shared";
  }
  for (int32_t id = 0; id < tail_pool_.num_blocks(); ++id) {
    KITTY_CHECK_EQ(tail_pool_.ref_count(id), tail_refs[id]) << "ref count of tail" << id;
    KITTY_CHECK_LE(tail_refs[id], 1) << "tail" << id << " shared";
    KITTY_CHECK(!tail_pool_.has_hash(id)) << "tail" << id << " carries a hash";
  }

  // Hash tables <-> hashed units.
  int32_t hashed_k = 0, hashed_v = 0, hashed_sinks = 0;
  for (int32_t id = 0; id < k_pool_.num_blocks(); ++id) hashed_k += k_pool_.has_hash(id);
  for (int32_t id = 0; id < v_pool_.num_blocks(); ++id) hashed_v += v_pool_.has_hash(id);
  for (int32_t id = 0; id < sink_pool_.num_blocks(); ++id) hashed_sinks += sink_pool_.has_hash(id);
  KITTY_CHECK_EQ(hashed_k, static_cast<int32_t>(segment_cache_.size())) << "hashed K pages";
  KITTY_CHECK_EQ(hashed_v, static_cast<int32_t>(segment_cache_.size())) << "hashed V pages";
  KITTY_CHECK_EQ(hashed_sinks, static_cast<int32_t>(sink_cache_.size())) << "hashed sinks";
  for (const auto& [hash, e] : segment_cache_) {
    KITTY_CHECK(k_pool_.has_hash(e.k.value) && k_pool_.hash(e.k.value) == hash)
        << "entry " << hash << " -> " << e.k;
    KITTY_CHECK(v_pool_.has_hash(e.v.value) && v_pool_.hash(e.v.value) == hash)
        << "entry " << hash << " -> " << e.v;
    // Units of one entry hold the same page index for every sequence holding them.
    if (k_index[e.k.value] >= 0 && v_index[e.v.value] >= 0) {
      KITTY_CHECK_EQ(k_index[e.k.value], v_index[e.v.value]) << "entry " << hash;
    }
  }
  for (const auto& [hash, sink] : sink_cache_) {
    KITTY_CHECK(sink_pool_.has_hash(sink.value) && sink_pool_.hash(sink.value) == hash)
        << "entry " << hash << " -> " << sink;
  }
  if (!caching) {
    KITTY_CHECK(segment_cache_.empty() && sink_cache_.empty() && pending_.empty());
  }

  // Pending entries name units their sequence still holds.
  for (const PendingEntry& e : pending_) {
    auto it = seqs_.find(e.seq);
    KITTY_CHECK(it != seqs_.end()) << "pending entry of freed " << e.seq;
    const SequencePages& p = it->second->pages;
    if (e.is_sink) {
      KITTY_CHECK(p.sink.value == e.sink_or_k && p.counters.sink_tokens == S)
          << "pending sink entry of " << e.seq;
    } else {
      auto k = std::find(p.k_pages.begin(), p.k_pages.end(), KPageId(e.sink_or_k));
      KITTY_CHECK(k != p.k_pages.end()) << "pending K" << e.sink_or_k << " not held by " << e.seq;
      const size_t i = k - p.k_pages.begin();
      KITTY_CHECK(i < p.v_pages.size() && p.v_pages[i].value == e.v)
          << "pending V" << e.v << " not page " << i << " of " << e.seq;
    }
  }

  for (const PoolStats& s : {MakePoolStats(k_pool_), MakePoolStats(v_pool_),
                             MakePoolStats(sink_pool_), MakePoolStats(tail_pool_)}) {
    KITTY_CHECK(s.num_free >= 0 && s.num_used >= 0 && s.num_cached >= 0);
    KITTY_CHECK_EQ(s.num_free + s.num_used + s.num_cached, s.num_total);
  }
}

}  // namespace kitty::block_manager
