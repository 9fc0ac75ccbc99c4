#include "scheduler/scheduler.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "base/status_macros.h"

namespace kitty::scheduler {

using block_manager::SeqKvCounters;

Scheduler::Scheduler(const SchedulerConfig& config, block_manager::BlockManager* block_manager)
    : config_(config), bm_(block_manager) {
  KITTY_CHECK_GT(config_.max_num_seqs, 0);
  KITTY_CHECK_GT(config_.max_num_batched_tokens, 0);
}

bool Scheduler::HigherPriority(const Sequence& a, const Sequence& b) const {
  if (a.priority != b.priority) return a.priority < b.priority;
  return a.arrival < b.arrival;
}

void Scheduler::AddSequence(SeqId id, std::vector<int32_t> prompt, int32_t priority,
                            std::string cache_salt) {
  KITTY_CHECK(!prompt.empty());
  KITTY_CHECK(!seqs_.contains(id)) << id;
  auto seq = std::make_unique<Sequence>();
  seq->id = id;
  seq->priority = priority;
  seq->arrival = next_arrival_++;
  seq->num_prompt_tokens = static_cast<int32_t>(prompt.size());
  seq->token_ids = std::move(prompt);
  seq->cache_salt = std::move(cache_salt);
  const Sequence& s = *seq;
  seqs_.emplace(id, std::move(seq));
  // Insert keeping waiting_ sorted by (priority, arrival).
  auto it = std::upper_bound(waiting_.begin(), waiting_.end(), id, [&](SeqId x, SeqId y) {
    return HigherPriority(*seqs_.at(x), *seqs_.at(y));
  });
  waiting_.insert(it, s.id);
}

std::optional<std::vector<block_manager::CopyJob>> Scheduler::ForkSequence(SeqId parent,
                                                                           SeqId child) {
  const Sequence& p = *seqs_.at(parent);
  KITTY_CHECK(p.status == SequenceStatus::kRunning) << parent;
  KITTY_CHECK(!seqs_.contains(child)) << child;
  auto c = std::make_unique<Sequence>(p);
  c->id = child;
  c->num_preemptions = 0;
  std::optional<std::vector<block_manager::CopyJob>> jobs = bm_->Fork(parent, child);
  Sequence& cs = *c;
  seqs_.emplace(child, std::move(c));
  if (jobs.has_value()) {
    running_.push_back(child);
    return jobs;
  }
  // No slot: recompute the child later (its prefix pages are findable in the cache).
  cs.status = SequenceStatus::kWaiting;
  cs.num_computed_tokens = 0;
  auto it = std::upper_bound(waiting_.begin(), waiting_.end(), child, [&](SeqId x, SeqId y) {
    return HigherPriority(*seqs_.at(x), *seqs_.at(y));
  });
  waiting_.insert(it, child);
  return std::nullopt;
}

void Scheduler::AppendToken(SeqId id, int32_t token) { seqs_.at(id)->token_ids.push_back(token); }

void Scheduler::FinishSequence(SeqId id) {
  auto it = seqs_.find(id);
  if (it == seqs_.end()) return;
  if (bm_->Contains(id)) bm_->Free(id);
  running_.erase(std::remove(running_.begin(), running_.end(), id), running_.end());
  waiting_.erase(std::remove(waiting_.begin(), waiting_.end(), id), waiting_.end());
  seqs_.erase(it);
}

const Sequence* Scheduler::Find(SeqId id) const {
  auto it = seqs_.find(id);
  return it == seqs_.end() ? nullptr : it->second.get();
}

void Scheduler::Preempt(SeqId victim, SchedulerOutput* out) {
  Sequence& v = *seqs_.at(victim);
  bm_->Free(victim);
  v.num_computed_tokens = 0;
  v.status = SequenceStatus::kWaiting;
  ++v.num_preemptions;
  ++num_preemptions_;
  running_.erase(std::remove(running_.begin(), running_.end(), victim), running_.end());
  auto it = std::upper_bound(waiting_.begin(), waiting_.end(), victim, [&](SeqId x, SeqId y) {
    return HigherPriority(*seqs_.at(x), *seqs_.at(y));
  });
  waiting_.insert(it, victim);
  out->preempted.push_back(victim);
}

// Schedule() — one step of continuous batching, in the manner of vLLM v1:
//
// 1. Running sequences first, most important first (priority, then arrival). Each asks for
//    all the tokens it still needs — 1 for a decode, the rest of its prompt for a sequence in
//    chunked prefill — capped by the step's token budget (--max-num-batched-tokens). If the
//    block manager cannot hold the pages that would seal, the least important running
//    sequence not yet scheduled in this step is preempted (pages freed, back to waiting, to be
//    recomputed later: "preemption by recompute"); if the requester itself is the least
//    important, it is the one preempted.
// 2. Then, if nothing was preempted, waiting sequences in (priority, arrival) order are
//    admitted while the budget and --max-num-seqs allow: the block manager applies prefix-
//    cache hits (those tokens are not recomputed) and the prompt's remainder runs as one
//    chunk, or as the first chunk of several when it exceeds the budget left.
//
// Chunking and Kitty sealing: a chunk appends its tokens to the sequence's tails; every 128
// tokens that complete a K page (and, 128 tokens later, a V page) seal into a page in the
// same step (pack jobs). Page contents depend only on their 128 tokens, so chunk boundaries
// never change a page; what changes is that a later chunk attends to the earlier chunks'
// sealed pages (quantized) instead of to their full-precision values, as a decode step would.
SchedulerOutput Scheduler::Schedule() {
  SchedulerOutput out;
  int32_t budget = config_.max_num_batched_tokens;
  absl::flat_hash_set<SeqId> scheduled;

  std::vector<SeqId> order = running_;
  std::stable_sort(order.begin(), order.end(),
                   [&](SeqId a, SeqId b) { return HigherPriority(*seqs_.at(a), *seqs_.at(b)); });

  auto schedule_chunk = [&](Sequence& s, int32_t n) {
    ScheduledSequence ss;
    ss.id = s.id;
    ss.start = s.num_computed_tokens;
    ss.num_tokens = n;
    ss.samples = s.num_computed_tokens + n == static_cast<int32_t>(s.token_ids.size());
    ss.counters_before = bm_->Get(s.id).counters;
    std::optional<std::vector<block_manager::PackJob>> packs =
        bm_->AppendTokens(s.id, absl::MakeConstSpan(s.token_ids).subspan(s.num_computed_tokens, n));
    KITTY_CHECK(packs.has_value()) << "AppendTokens failed after CanAppend for " << s.id;
    out.pack_jobs.insert(out.pack_jobs.end(), packs->begin(), packs->end());
    out.sequences.push_back(ss);
    out.num_batched_tokens += n;
    budget -= n;
    scheduled.insert(s.id);
  };

  for (size_t i = 0; i < order.size() && budget > 0; ++i) {
    const SeqId id = order[i];
    if (!seqs_.contains(id) || seqs_.at(id)->status != SequenceStatus::kRunning) continue;
    Sequence& s = *seqs_.at(id);
    const int32_t need = static_cast<int32_t>(s.token_ids.size()) - s.num_computed_tokens;
    if (need <= 0) continue;
    const int32_t n = std::min(need, budget);
    bool preempted_self = false;
    while (!bm_->CanAppend({{id, n}})) {
      // Least important running sequence not yet scheduled in this step (may be `id` itself).
      std::optional<SeqId> victim;
      for (size_t j = order.size(); j-- > i;) {
        const SeqId v = order[j];
        if (seqs_.contains(v) && seqs_.at(v)->status == SequenceStatus::kRunning &&
            !scheduled.contains(v)) {
          victim = v;
          break;
        }
      }
      KITTY_CHECK(victim.has_value());
      Preempt(*victim, &out);
      if (*victim == id) {
        preempted_self = true;
        break;
      }
    }
    if (preempted_self) continue;
    schedule_chunk(s, n);
  }

  if (out.preempted.empty()) {
    while (!waiting_.empty() && budget > 0 &&
           static_cast<int32_t>(running_.size()) < config_.max_num_seqs) {
      const SeqId id = waiting_.front();
      Sequence& s = *seqs_.at(id);
      // Ask first: an admission that cannot complete must not touch the block manager.
      const std::optional<int32_t> planned = bm_->PlanAdmission(s.token_ids, s.cache_salt, budget);
      if (!planned.has_value()) break;  // no sequence slot or pages now
      const int32_t need = static_cast<int32_t>(s.token_ids.size()) - *planned;
      const int32_t n = std::min(need, budget);
      if (n < need && !config_.enable_chunked_prefill) break;
      const std::optional<int32_t> cached = bm_->AllocateSequence(id, s.token_ids, s.cache_salt);
      // The plan is exact (block_manager_random_test); should it ever differ, wait rather than
      // crash the server.
      if (cached != planned || !bm_->CanAppend({{id, n}})) {
        if (cached.has_value()) bm_->Free(id);
        break;
      }
      s.num_computed_tokens = *cached;
      s.num_cached_prompt_tokens = *cached;
      s.status = SequenceStatus::kRunning;
      waiting_.pop_front();
      running_.push_back(id);
      schedule_chunk(s, n);
    }
  }
  return out;
}

void Scheduler::OnStepComputed(const SchedulerOutput& out) {
  for (const ScheduledSequence& ss : out.sequences) {
    auto it = seqs_.find(ss.id);
    if (it == seqs_.end()) continue;
    it->second->num_computed_tokens += ss.num_tokens;
  }
}

}  // namespace kitty::scheduler
