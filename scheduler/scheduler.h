// File: scheduler/scheduler.h
// -----------------------------------------------------------------------------
// Continuous-batching policy (host-only C++, DESIGN.md §2): which sequences run in the next
// step and with how many tokens, asking the block manager for pages. It knows token ids and
// counts, never tensors; the engine executes what Schedule() returns.
//
// Thread safety: none; owned by the engine thread.
#ifndef KITTY_SCHEDULER_SCHEDULER_H_
#define KITTY_SCHEDULER_SCHEDULER_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "block_manager/block_manager.h"

namespace kitty::scheduler {

using block_manager::SeqId;

struct SchedulerConfig {
  int32_t max_num_seqs = 256;             // running sequences per step
  int32_t max_num_batched_tokens = 2048;  // tokens per step (decodes + prefill chunks)
  bool enable_chunked_prefill = true;     // split prompts longer than the budget left
};

enum class SequenceStatus { kWaiting, kRunning };

// What the scheduler tracks per sequence. `token_ids` holds every token that must end up in
// the KV cache: the prompt, then each sampled token (appended by the engine via AppendToken).
struct Sequence {
  SeqId id;
  int32_t priority = 0;  // lower runs first
  int64_t arrival = 0;   // FCFS order within a priority (monotonic)
  std::vector<int32_t> token_ids;
  int32_t num_prompt_tokens = 0;
  int32_t num_computed_tokens = 0;  // tokens whose K/V are in the cache
  std::string cache_salt;
  SequenceStatus status = SequenceStatus::kWaiting;
  int32_t num_preemptions = 0;
  int32_t num_cached_prompt_tokens = 0;  // prefix-cache hit at the last admission
};

struct ScheduledSequence {
  SeqId id;
  int32_t start = 0;       // first token index of this step (== num_computed before)
  int32_t num_tokens = 0;  // tokens computed this step: token_ids[start, start+num_tokens)
  bool samples = false;    // the step reaches the last known token: sample the next one
  block_manager::SeqKvCounters counters_before;  // KV state the forward pass starts from
};

struct SchedulerOutput {
  std::vector<ScheduledSequence> sequences;       // running decodes first, then prefill chunks
  std::vector<block_manager::PackJob> pack_jobs;  // pages that seal during this step, in order
  std::vector<SeqId> preempted;                   // freed this step, back to waiting (recompute)
  int32_t num_batched_tokens = 0;
  bool empty() const { return sequences.empty(); }
};

class Scheduler {
 public:
  Scheduler(const SchedulerConfig& config, block_manager::BlockManager* block_manager);
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a new sequence (status waiting). REQUIRES: prompt non-empty, id unused.
  void AddSequence(SeqId id, std::vector<int32_t> prompt, int32_t priority, std::string cache_salt);

  // Adds a sequence forked from a running `parent` after a step: it shares the parent's pages
  // (block manager Fork) and starts with the same tokens. Returns the copy jobs the runtime must
  // run before the next forward, or nullopt if no slot was free — then the child is queued as a
  // new waiting sequence with the parent's tokens instead (the prefix cache finds its pages).
  std::optional<std::vector<block_manager::CopyJob>> ForkSequence(SeqId parent, SeqId child);

  // Records a token sampled for `id` (after the step that computed its predecessor).
  void AppendToken(SeqId id, int32_t token);

  // Removes a sequence (finished or aborted) and frees its pages. No-op for unknown ids.
  void FinishSequence(SeqId id);

  // Builds the next step (algorithm in the .cc). Calls BlockManager::AppendTokens for every
  // scheduled chunk, so the returned pages exist when the forward pass runs; the caller must
  // call BlockManager::CommitStep() after the forward pass and OnStepComputed() to advance
  // num_computed_tokens.
  SchedulerOutput Schedule();
  void OnStepComputed(const SchedulerOutput& out);

  const Sequence* Find(SeqId id) const;
  // The waiting sequence admission tries next (the most important), if any.
  std::optional<SeqId> NextWaiting() const {
    return waiting_.empty() ? std::nullopt : std::optional<SeqId>(waiting_.front());
  }
  int32_t num_running() const { return static_cast<int32_t>(running_.size()); }
  int32_t num_waiting() const { return static_cast<int32_t>(waiting_.size()); }
  int64_t num_preemptions() const { return num_preemptions_; }
  bool idle() const { return running_.empty() && waiting_.empty(); }

 private:
  bool HigherPriority(const Sequence& a, const Sequence& b) const;  // a before b
  // Frees `victim`'s pages and moves it to the waiting queue (recompute later).
  void Preempt(SeqId victim, SchedulerOutput* out);
  std::optional<SeqId> PickVictim(SeqId requester) const;

  SchedulerConfig config_;
  block_manager::BlockManager* bm_;  // not owned
  absl::flat_hash_map<SeqId, std::unique_ptr<Sequence>> seqs_;
  std::vector<SeqId> running_;  // admission order
  std::deque<SeqId> waiting_;   // kept sorted by (priority, arrival)
  int64_t next_arrival_ = 0;
  int64_t num_preemptions_ = 0;
};

}  // namespace kitty::scheduler

#endif  // KITTY_SCHEDULER_SCHEDULER_H_
