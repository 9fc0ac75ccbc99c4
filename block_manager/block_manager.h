// File: block_manager/block_manager.h
// -----------------------------------------------------------------------------
// BlockManager: the host-side owner of KV-cache memory *metadata* (DESIGN.md §3, KITTY.md
// §1.2, §10): four pools (K pages, V pages, sink blocks, tail slots), per-sequence page
// tables and counters, the prefix cache, fork, and stats. It deals in ids and counts, never
// device pointers; the runtime executes the pack and copy jobs it returns.
//
// Where the tokens of one sequence live (S = sink_tokens, P = page_tokens, W = v_window_tokens;
// identical in every layer, a unit id names the same slot in every layer):
//
//   token  0 ........ S  S ...... S+P  S+P ..... S+2P  ...      num_tokens
//          |  sink    |  K page 0     |  K page 1     | ... | K tail (<P) |
//          |  sink    |  V page 0     | ...  | V tail (<P+W: pack queue + window)  |
//
// Append rule (per token; the runtime's kernels implement the same rule):
//   if sink_tokens < S:  sink_tokens++                       (sink block written, private)
//   else:                k_tail++; if k_tail == P:   seal K page num_k_pages, k_tail = 0
//                        v_tail++; if v_tail == P+W: seal V page num_v_pages, v_tail = W
// A sealed page is immutable: it is shared by ref count, never copied. A full sink too.
//
// Prefix cache (chained hash, see prefix_hash.h): the sink entry is registered once the sink
// is full, segment i's entry (K page i, V page i) once both pages are sealed; registration
// takes effect at the next CommitStep(), i.e. after the forward pass that wrote the pages.
// Units holding an entry stay findable after their last reference is dropped, until the LRU
// free queue (block_pool.h) hands them out again, which evicts the entry.
//
// Thread safety: not thread-safe and takes no locks. One engine thread owns the BlockManager
// (with the scheduler) and calls every method; other threads read only GetStats() snapshots
// that the engine thread publishes.
#ifndef KITTY_BLOCK_MANAGER_BLOCK_MANAGER_H_
#define KITTY_BLOCK_MANAGER_BLOCK_MANAGER_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <ostream>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "block_manager/block_pool.h"
#include "block_manager/prefix_hash.h"
#include "block_manager/types.h"

namespace kitty::block_manager {

struct BlockManagerConfig {
  int32_t num_k_pages = 0;
  int32_t num_v_pages = 0;
  int32_t num_sink_blocks = 0;
  int32_t num_tail_slots = 0;
  int32_t sink_tokens = 32;       // S (> 0)
  int32_t page_tokens = 128;      // P (> 0)
  int32_t v_window_tokens = 128;  // W: 128 in quantized modes, 0 in mode `auto`
  bool enable_prefix_caching = true;
  // For stats only (all layers together): bytes of one unit of each kind, and KV elements of
  // one token (2 * layers * Hkv * head_dim: K and V).
  int64_t k_page_bytes = 0;
  int64_t v_page_bytes = 0;
  int64_t sink_block_bytes = 0;
  int64_t tail_slot_bytes = 0;
  int64_t elements_per_token = 0;
};

// Sizing helper. `unit_sizes` supplies the token geometry and the *_bytes / elements_per_token
// fields; the four counts are computed from `budget_bytes`:
//
//   per_seq_bytes  = sink_block_bytes + tail_slot_bytes          (private state of one sequence)
//   pair_bytes     = k_page_bytes + v_page_bytes                 (one K page + one V page)
//   num_seqs       = min(max_num_seqs,
//                        budget_bytes / (per_seq_bytes + pages_per_seq * pair_bytes))
//   num_sink_blocks = num_tail_slots = num_seqs                   (one of each per sequence)
//   num_k_pages    = num_v_pages = (budget_bytes - num_seqs * per_seq_bytes) / pair_bytes
//
// i.e. sequence slots are reserved first (each with room for `pages_per_seq` page pairs: the
// pages a typical sequence needs, so fixed per-sequence state does not crowd out pages), the
// rest of the budget goes to pages. K and V get equal counts since V page i exists iff K page i
// did (K leads V by at most one page per sequence). kResourceExhausted when the budget cannot
// hold one sequence with one page pair; kInvalidArgument on non-positive sizes.
absl::StatusOr<BlockManagerConfig> SizeBlockManager(int64_t budget_bytes, int32_t max_num_seqs,
                                                    const BlockManagerConfig& unit_sizes,
                                                    int32_t pages_per_seq = 1);

// The page pairs a sequence holding `num_tokens` tokens occupies: its sealed K pages (V pages
// are never more), by the append rule below. SizeBlockManager's `pages_per_seq` for sequences
// that end at that length.
int32_t PagesForTokens(int32_t num_tokens, const BlockManagerConfig& geometry);

// The most tokens one sequence can hold with the whole cache to itself: the K pages (and V
// pages, W tokens behind) of `config` plus what its sink and tails hold before the next page
// would seal. The engine caps the context (max_model_len) with it, so that a request never
// needs more KV memory than exists. 0 when the config has no sequence slot.
int32_t MaxSequenceTokens(const BlockManagerConfig& config);

// The per-sequence counters of KITTY.md §1.2, identical in every layer.
struct SeqKvCounters {
  int32_t sink_tokens = 0;    // [0, S]
  int32_t num_k_pages = 0;    // sealed K pages
  int32_t k_tail_tokens = 0;  // [0, P)
  int32_t num_v_pages = 0;    // sealed V pages; num_k_pages - num_v_pages ∈ {0, 1} normally
  int32_t v_tail_tokens = 0;  // [0, P + W)
  int32_t num_tokens = 0;     // = sink + P*num_k_pages + k_tail = sink + P*num_v_pages + v_tail

  friend bool operator==(const SeqKvCounters&, const SeqKvCounters&) = default;
};
std::ostream& operator<<(std::ostream& os, const SeqKvCounters& c);

// Applies the append rule to `counters` for `num_new_tokens` tokens (closed form, O(1)).
// Also returns how many K and V pages seal on the way. Exposed for the scheduler and tests.
struct AppendPlan {
  SeqKvCounters counters;
  int32_t num_new_k_pages = 0;
  int32_t num_new_v_pages = 0;
};
AppendPlan PlanAppend(const SeqKvCounters& counters, int32_t num_new_tokens,
                      const BlockManagerConfig& config);

// What the scheduler and runtime see of one sequence.
struct SequencePages {
  SinkBlockId sink;
  TailSlotId tail;
  std::vector<KPageId> k_pages;  // k_pages[i] covers tokens [S+P·i, S+P·(i+1))
  std::vector<VPageId> v_pages;  // v_pages[i] covers the same tokens as k_pages[i]
  SeqKvCounters counters;
  int32_t num_tokens = 0;         // == counters.num_tokens (kept for callers' convenience)
  int32_t num_cached_tokens = 0;  // prefix-cache hit at admission; not recomputed
};

// A copy the runtime executes (every layer) before the next forward pass.
struct CopyJob {
  enum Kind { kSink, kTail };
  Kind kind;
  int32_t src;  // SinkBlockId / TailSlotId value
  int32_t dst;
  friend bool operator==(const CopyJob&, const CopyJob&) = default;
};

// A page that seals during AppendTokens: the runtime packs it (from the K tail, or from the
// oldest P tokens of the V tail) into unit `page_id` during the forward pass that writes the
// tokens. Returned in token order; for one token, K before V.
struct PackJob {
  enum Kind { kKey, kValue };
  Kind kind;
  SeqId seq;
  int32_t page_index;  // index in the sequence's k_pages / v_pages
  int32_t page_id;     // KPageId / VPageId value
  friend bool operator==(const PackJob&, const PackJob&) = default;
};

struct PoolStats {
  int32_t num_total = 0;
  int32_t num_used = 0;    // ref count > 0
  int32_t num_free = 0;    // ref count 0, no prefix-cache entry
  int32_t num_cached = 0;  // ref count 0, holds an entry: findable until evicted
};

// A plain snapshot for logs and metrics (runtime/ exports it).
struct BlockManagerStats {
  PoolStats k_pages, v_pages, sink_blocks, tail_slots;
  int32_t num_sequences = 0;

  // Bytes of units in use (all layers), by storage kind.
  int64_t sink_bytes_in_use = 0;
  int64_t tail_bytes_in_use = 0;  // fixed capacity per slot, whatever its fill
  int64_t k_page_bytes_in_use = 0;
  int64_t v_page_bytes_in_use = 0;
  int64_t total_bytes_in_use = 0;

  // Fraction of the fuller page pool in use (vLLM's kv_cache_usage_perc): V pages seal W
  // tokens after K pages, so K runs out first; the mean of the two read ~0.75 while sequences
  // were being preempted for lack of K pages. Prefix-cached pages count as free.
  double page_usage = 0;

  // Σ num_tokens over sequences: a shared prefix counts once per sequence.
  int64_t num_logical_tokens = 0;
  // KV elements physically held by units in use, each shared unit once: sinks (their fill),
  // sealed pages (P tokens of K or of V), tails (their fill).
  int64_t num_stored_kv_elements = 0;
  // Bytes those elements occupy: sealed pages plus the filled rows of sinks and tails (the
  // unfilled rows of a tail slot are reserved memory, in total_bytes_in_use, not storage).
  int64_t stored_bytes = 0;
  // stored_bytes * 8 / num_stored_kv_elements: what the storage formats cost per element, tails
  // and sinks included (mode auto: the dtype's bits exactly); and 16 / that. 0 when nothing is
  // stored or sizes are unset.
  double effective_bits_per_element = 0;
  double compression_vs_fp16 = 0;
  // fp16 bytes of the logical tokens / total_bytes_in_use: includes the gain of prefix sharing.
  double logical_compression_vs_fp16 = 0;

  // Prefix cache, in tokens as vLLM: queries += prompt_len per admission, hits += cached tokens.
  int64_t prefix_cache_queries_tokens = 0;
  int64_t prefix_cache_hit_tokens = 0;
  // Entries (a sink, or a (K, V) page pair) dropped because a unit was reallocated.
  int64_t prefix_cache_evictions = 0;
};

// See the file comment. Every method runs on the engine thread.
class BlockManager {
 public:
  // KITTY_CHECKs the config (positive geometry, non-negative counts).
  explicit BlockManager(const BlockManagerConfig& config);
  BlockManager(const BlockManager&) = delete;
  BlockManager& operator=(const BlockManager&) = delete;

  const BlockManagerConfig& config() const { return config_; }

  // Admits a new sequence with its prompt: a sink block and a tail slot, after the prefix-cache
  // lookup. A hit of the sink and of segments 0..j-1 (chain order, stopping at the first miss)
  // is used only if S + P·j <= prompt_len − P (the sink alone only if S <= prompt_len − P), so
  // the recomputed suffix rebuilds the tails exactly as a fresh prefill would. A hit takes
  // references and sets counters {S, j, 0, j, 0, S+P·j}.
  // Returns num_cached_tokens (the runtime appends prompt[num_cached_tokens:] and does not
  // recompute the rest), or nullopt, changing nothing, if no sink block or tail slot is free.
  // The scheduler asks CanAppend() for the prompt's pages separately.
  // REQUIRES: !Contains(seq).
  std::optional<int32_t> AllocateSequence(SeqId seq, absl::Span<const int32_t> prompt_token_ids,
                                          std::string_view cache_salt);

  // What AllocateSequence(prompt) followed by AppendTokens of the uncached rest, capped at
  // `max_new_tokens`, would do, without doing it: the tokens the prefix cache would supply, or
  // nullopt if a sequence slot or the pages are missing (hit pages that sit in the free queue
  // count as taken). Changes nothing: no stats, no eviction. The scheduler asks this before
  // admitting, so an admission that cannot complete never touches the cache (a failed attempt
  // used to pop, and so evict, a cached sink and count the prompt as a prefix-cache query at
  // every step the queue's head waited).
  std::optional<int32_t> PlanAdmission(absl::Span<const int32_t> prompt_token_ids,
                                       std::string_view cache_salt, int32_t max_new_tokens) const;

  // Whether every (seq, num_new_tokens) request can append in one step: pages that would seal,
  // summed per pool, vs. free + evictable units. A seq may appear more than once (summed).
  // REQUIRES: every seq is Contains().
  bool CanAppend(absl::Span<const std::pair<SeqId, int32_t>> requests) const;

  // Appends tokens (ids are needed for the prefix hash): applies the append rule, allocates
  // the pages that seal on the way, and returns their pack jobs in order. nullopt, changing
  // nothing, if the pages are not available. REQUIRES: Contains(seq).
  std::optional<std::vector<PackJob>> AppendTokens(SeqId seq, absl::Span<const int32_t> token_ids);

  // Registers the prefix-cache entries completed since the last call. Call it after the
  // forward pass that executed the pack jobs, before freeing sequences that finished in that
  // step (a sequence freed earlier drops its pending entries: its pages may never have been
  // written).
  void CommitStep();

  // Forks `child` from `parent` (n>1 sampling): the child references the parent's sealed pages
  // and full sink, gets a new tail slot (and a new sink block if the parent's sink is partial),
  // and the returned copy jobs fill them (kSink if the sink is partial and non-empty, kTail if
  // the tails are non-empty). nullopt, changing nothing, if those units are not available.
  // Call it between steps (after CommitStep), when the parent's state is written.
  // REQUIRES: Contains(parent), !Contains(child).
  std::optional<std::vector<CopyJob>> Fork(SeqId parent, SeqId child);

  // Drops every reference `seq` holds; units reaching 0 go to the free queues' tails (last
  // page first, so a sequence's prefix outlives its tail in the cache). REQUIRES: Contains(seq).
  void Free(SeqId seq);

  bool Contains(SeqId seq) const { return seqs_.contains(seq); }
  // REQUIRES: Contains(seq). The reference is valid until Free(seq).
  const SequencePages& Get(SeqId seq) const;
  int32_t num_sequences() const { return static_cast<int32_t>(seqs_.size()); }

  BlockManagerStats GetStats() const;

  // Rough number of new tokens that fit now: min(free+cached K, free+cached V) · P. Ignores
  // sequence slots and the tails' slack (logs and metrics only).
  int32_t FreeTokenCapacity() const;

  // Every ref count equals the references held by sequences; per pool free + used + cached ==
  // total and free queues intact; no unit in two places; hash tables ↔ hashed units
  // consistent; counters consistent. KITTY_CHECK on violation. O(units + tokens/P).
  void CheckInvariants() const;

  // Read-only views for tests and debugging.
  const BlockPool& k_pool() const { return k_pool_; }
  const BlockPool& v_pool() const { return v_pool_; }
  const BlockPool& sink_pool() const { return sink_pool_; }
  const BlockPool& tail_pool() const { return tail_pool_; }

 private:
  struct SegmentEntry {
    KPageId k;
    VPageId v;
  };
  // A prefix-cache entry waiting for CommitStep().
  struct PendingEntry {
    SeqId seq;  // the sequence that sealed the units
    BlockHash hash;
    bool is_sink;
    int32_t sink_or_k;  // SinkBlockId (is_sink) or KPageId value
    int32_t v;          // VPageId value (segments)
  };
  struct SequenceState {
    SequencePages pages;
    // Prefix hash chain; maintained only with enable_prefix_caching.
    BlockHash root;                            // HashSalt(cache_salt)
    std::optional<BlockHash> sink_hash;        // once the sink is full
    std::vector<BlockHash> segment_hashes;     // segment_hashes[i] once K page i sealed
    std::vector<int32_t> open_segment_tokens;  // tokens of the segment being filled
  };
  struct Lookup {
    std::optional<SinkBlockId> sink;
    BlockHash sink_hash;
    std::vector<SegmentEntry> segments;
    std::vector<BlockHash> segment_hashes;
  };

  Lookup LookupPrefix(absl::Span<const int32_t> prompt, const BlockHash& root) const;
  // Whether a new sequence with this hit gets its units: a tail slot, and a sink unless it hit.
  bool HasSequenceSlot(const Lookup& lookup) const;
  // The counters of a sequence admitted with this hit: {S, j, 0, j, 0, S+P·j}, or empty.
  SeqKvCounters CountersAfterHit(const Lookup& lookup) const;
  // Pops a free unit, evicting the prefix-cache entry it still holds.
  KPageId AllocateKPage();
  VPageId AllocateVPage();
  SinkBlockId AllocateSinkBlock();
  void EvictSegment(const BlockHash& hash);
  SequenceState& GetState(SeqId seq);

  BlockManagerConfig config_;
  BlockPool k_pool_;
  BlockPool v_pool_;
  BlockPool sink_pool_;
  BlockPool tail_pool_;

  // unique_ptr: Get() references stay valid while the map rehashes.
  absl::flat_hash_map<SeqId, std::unique_ptr<SequenceState>> seqs_;

  absl::flat_hash_map<BlockHash, SinkBlockId> sink_cache_;
  absl::flat_hash_map<BlockHash, SegmentEntry> segment_cache_;
  std::vector<PendingEntry> pending_;

  int64_t prefix_cache_queries_tokens_ = 0;
  int64_t prefix_cache_hit_tokens_ = 0;
  int64_t prefix_cache_evictions_ = 0;
};

}  // namespace kitty::block_manager

#endif  // KITTY_BLOCK_MANAGER_BLOCK_MANAGER_H_
