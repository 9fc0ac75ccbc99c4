// Scripted scheduling scenarios (issue 5): token budget, chunked prefill, max_num_seqs,
// priority order, preemption order and recompute, fork.
#include "scheduler/scheduler.h"

#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::scheduler {
namespace {

using block_manager::BlockManager;
using block_manager::BlockManagerConfig;
using ::testing::ElementsAre;

// Small geometry: sink 4, pages of 8 tokens, V window 8.
BlockManagerConfig SmallConfig(int pages, int slots) {
  BlockManagerConfig c;
  c.num_k_pages = c.num_v_pages = pages;
  c.num_sink_blocks = c.num_tail_slots = slots;
  c.sink_tokens = 4;
  c.page_tokens = 8;
  c.v_window_tokens = 8;
  c.enable_prefix_caching = false;
  return c;
}

std::vector<int32_t> Tokens(int n, int base = 10) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), base);
  return t;
}

struct Step {
  std::vector<std::pair<int64_t, int32_t>> chunks;  // (seq id, tokens)
  std::vector<int64_t> preempted;
};

Step Summarize(const SchedulerOutput& out) {
  Step s;
  for (const auto& ss : out.sequences) s.chunks.push_back({ss.id.value, ss.num_tokens});
  for (SeqId p : out.preempted) s.preempted.push_back(p.value);
  return s;
}

// Completes a step: computed tokens advance, and sampling sequences get one new token.
void Finish(Scheduler& sched, BlockManager& bm, const SchedulerOutput& out) {
  bm.CommitStep();
  sched.OnStepComputed(out);
  for (const auto& ss : out.sequences) {
    if (ss.samples) sched.AppendToken(ss.id, 7);
  }
}

TEST(SchedulerTest, TokenBudgetChunksTheLastAdmittedPrompt) {
  BlockManager bm(SmallConfig(64, 8));
  Scheduler sched({.max_num_seqs = 8, .max_num_batched_tokens = 25}, &bm);
  sched.AddSequence(SeqId(1), Tokens(10), 0, "");
  sched.AddSequence(SeqId(2), Tokens(10), 0, "");
  sched.AddSequence(SeqId(3), Tokens(10), 0, "");
  SchedulerOutput o1 = sched.Schedule();
  EXPECT_THAT(Summarize(o1).chunks,
              ElementsAre(std::pair<int64_t, int32_t>{1, 10}, std::pair<int64_t, int32_t>{2, 10},
                          std::pair<int64_t, int32_t>{3, 5}));
  EXPECT_TRUE(o1.sequences[0].samples);
  EXPECT_FALSE(o1.sequences[2].samples);  // a prefill chunk short of the prompt's end
  EXPECT_EQ(o1.num_batched_tokens, 25);
  Finish(sched, bm, o1);
  // Decodes of 1 and 2 come first, then the rest of 3's prompt.
  SchedulerOutput o2 = sched.Schedule();
  EXPECT_THAT(Summarize(o2).chunks,
              ElementsAre(std::pair<int64_t, int32_t>{1, 1}, std::pair<int64_t, int32_t>{2, 1},
                          std::pair<int64_t, int32_t>{3, 5}));
  EXPECT_TRUE(o2.sequences[2].samples);
  EXPECT_EQ(o2.sequences[2].start, 5);
}

TEST(SchedulerTest, LongPromptIsSplitIntoBudgetSizedChunks) {
  BlockManager bm(SmallConfig(64, 4));
  Scheduler sched({.max_num_seqs = 4, .max_num_batched_tokens = 16}, &bm);
  sched.AddSequence(SeqId(1), Tokens(40), 0, "");
  std::vector<int32_t> chunks;
  while (true) {
    SchedulerOutput o = sched.Schedule();
    ASSERT_EQ(o.sequences.size(), 1u);
    chunks.push_back(o.sequences[0].num_tokens);
    const bool done = o.sequences[0].samples;
    Finish(sched, bm, o);
    if (done) break;
  }
  EXPECT_THAT(chunks, ElementsAre(16, 16, 8));
  // Pages sealed along the way equal a one-shot prefill of 40 tokens.
  EXPECT_EQ(bm.Get(SeqId(1)).counters.num_k_pages, (40 - 4) / 8);
}

TEST(SchedulerTest, MaxNumSeqsLimitsAdmission) {
  BlockManager bm(SmallConfig(64, 8));
  Scheduler sched({.max_num_seqs = 2, .max_num_batched_tokens = 100}, &bm);
  for (int i = 1; i <= 3; ++i) sched.AddSequence(SeqId(i), Tokens(5), 0, "");
  SchedulerOutput o = sched.Schedule();
  EXPECT_EQ(o.sequences.size(), 2u);
  EXPECT_EQ(sched.num_running(), 2);
  EXPECT_EQ(sched.num_waiting(), 1);
}

TEST(SchedulerTest, LowerPriorityValueIsAdmittedFirst) {
  BlockManager bm(SmallConfig(64, 8));
  Scheduler sched({.max_num_seqs = 1, .max_num_batched_tokens = 100}, &bm);
  sched.AddSequence(SeqId(1), Tokens(5), /*priority=*/5, "");
  sched.AddSequence(SeqId(2), Tokens(5), /*priority=*/0, "");
  sched.AddSequence(SeqId(3), Tokens(5), /*priority=*/5, "");
  SchedulerOutput o = sched.Schedule();
  ASSERT_EQ(o.sequences.size(), 1u);
  EXPECT_EQ(o.sequences[0].id, SeqId(2));
  Finish(sched, bm, o);
  sched.FinishSequence(SeqId(2));
  o = sched.Schedule();
  EXPECT_EQ(o.sequences[0].id, SeqId(1));  // FCFS within a priority
}

TEST(SchedulerTest, PreemptsTheNewestRunningSequenceWhenPagesRunOut) {
  // 3 K and 3 V pages of 8 tokens. Prompts end one token short of sealing a K page, so each
  // decode round seals pages and the pool runs dry after the first round.
  BlockManager bm(SmallConfig(3, 4));
  Scheduler sched({.max_num_seqs = 4, .max_num_batched_tokens = 100}, &bm);
  // 4 + 7 = 11 tokens: K tail holds 7, the first decode token seals K page 0.
  for (int i = 1; i <= 3; ++i) sched.AddSequence(SeqId(i), Tokens(11, 100 * i), 0, "");
  SchedulerOutput o = sched.Schedule();
  ASSERT_EQ(o.sequences.size(), 3u);
  Finish(sched, bm, o);
  // Steps seal 1 K page per sequence; V pages seal 8 tokens later. 3 K pages suffice for one
  // round; a second round of sealing needs more, so the newest sequences get preempted.
  std::vector<int64_t> preempted;
  for (int step = 0; step < 12 && preempted.size() < 2; ++step) {
    o = sched.Schedule();
    for (SeqId p : o.preempted) preempted.push_back(p.value);
    Finish(sched, bm, o);
  }
  ASSERT_GE(preempted.size(), 1u);
  EXPECT_EQ(preempted[0], 3);  // newest first
  EXPECT_GT(sched.num_preemptions(), 0);
  const Sequence* s3 = sched.Find(SeqId(3));
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->status, SequenceStatus::kWaiting);
  EXPECT_EQ(s3->num_computed_tokens, 0);  // recomputed from scratch later
  EXPECT_GT(s3->token_ids.size(), 11u);   // keeps its generated tokens
}

// A waiting head that does not fit yet must leave the block manager alone at every step: a
// failed admission used to count its prompt as a prefix-cache query each time (35x inflated
// hit-rate denominators under queueing) and to pop, and so evict, a cached sink.
TEST(SchedulerTest, BlockedAdmissionTouchesNothing) {
  BlockManagerConfig config = SmallConfig(/*pages=*/4, /*slots=*/4);
  config.enable_prefix_caching = true;
  BlockManager bm(config);
  Scheduler sched({.max_num_seqs = 4, .max_num_batched_tokens = 64}, &bm);
  // A finished 20-token sequence leaves its sink (and two pages) cached, findable.
  sched.AddSequence(SeqId(1), Tokens(20), 0, "");
  Finish(sched, bm, sched.Schedule());
  sched.FinishSequence(SeqId(1));
  // A running sequence holds 3 of the 4 K pages; the next prompt needs 3 more.
  sched.AddSequence(SeqId(2), Tokens(28, 500), 0, "");
  Finish(sched, bm, sched.Schedule());
  sched.AddSequence(SeqId(3), Tokens(28, 900), 0, "");
  const block_manager::BlockManagerStats before = bm.GetStats();
  for (int i = 0; i < 5; ++i) {
    const SchedulerOutput out = sched.Schedule();
    for (const auto& ss : out.sequences) EXPECT_NE(ss.id, SeqId(3));
    Finish(sched, bm, out);
  }
  const block_manager::BlockManagerStats after = bm.GetStats();
  EXPECT_EQ(sched.num_waiting(), 1);
  EXPECT_EQ(after.prefix_cache_queries_tokens, before.prefix_cache_queries_tokens);
  EXPECT_EQ(after.prefix_cache_evictions, before.prefix_cache_evictions);
  EXPECT_EQ(after.sink_blocks.num_cached, before.sink_blocks.num_cached);
}

TEST(SchedulerTest, ForkSharesPagesAndQueuesWhenNoSlot) {
  BlockManager bm(SmallConfig(16, 2));
  Scheduler sched({.max_num_seqs = 4, .max_num_batched_tokens = 100}, &bm);
  sched.AddSequence(SeqId(1), Tokens(30), 0, "");
  SchedulerOutput o = sched.Schedule();
  Finish(sched, bm, o);
  auto jobs = sched.ForkSequence(SeqId(1), SeqId(2));
  ASSERT_TRUE(jobs.has_value());
  EXPECT_EQ(bm.Get(SeqId(2)).k_pages, bm.Get(SeqId(1)).k_pages);  // shared, not copied
  EXPECT_EQ(bm.k_pool().ref_count(bm.Get(SeqId(1)).k_pages[0].value), 2);
  // No third tail slot: the next child waits to be recomputed.
  EXPECT_FALSE(sched.ForkSequence(SeqId(1), SeqId(3)).has_value());
  EXPECT_EQ(sched.Find(SeqId(3))->status, SequenceStatus::kWaiting);
}

}  // namespace
}  // namespace kitty::scheduler
