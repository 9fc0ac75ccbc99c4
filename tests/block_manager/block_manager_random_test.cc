// Seeded random operation sequences (allocate with prefix hits, append, fork, free, commit,
// eviction under pressure) with CheckInvariants() after every step (TensorRT-LLM
// verifyQueueIntegrity style), against a small model of the expected state:
//  - counters follow an independent implementation of the per-token append rule;
//  - every unit a sequence holds has the content the sequence expects: the model records, for
//    each K/V page and sink written, the (salt, token prefix) it was computed from, so a wrong
//    prefix-cache hit or a unit reused while still referenced shows up as a content mismatch.
#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "block_manager/block_manager.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::block_manager {
namespace {

struct Params {
  int32_t sink_tokens;
  int32_t page_tokens;
  int32_t v_window_tokens;
  int32_t num_pages;
  int32_t num_seqs;
  int32_t num_steps;
  uint32_t seed;
};

std::ostream& operator<<(std::ostream& os, const Params& p) {
  return os << "S" << p.sink_tokens << "_P" << p.page_tokens << "_W" << p.v_window_tokens
            << "_pages" << p.num_pages << "_seqs" << p.num_seqs << "_seed" << p.seed;
}

// Content key of a unit: salt index, then the token prefix it was computed from.
using Key = std::vector<int32_t>;

struct ModelSeq {
  int32_t salt = 0;
  std::vector<int32_t> tokens;       // appended so far
  std::vector<int32_t> prompt_rest;  // prompt tokens not appended yet
  SeqKvCounters counters;
};

class RandomOpsTest : public ::testing::TestWithParam<Params> {
 protected:
  RandomOpsTest() : p_(GetParam()), rng_(p_.seed) {
    BlockManagerConfig c;
    c.num_k_pages = c.num_v_pages = p_.num_pages;
    c.num_sink_blocks = c.num_tail_slots = p_.num_seqs;
    c.sink_tokens = p_.sink_tokens;
    c.page_tokens = p_.page_tokens;
    c.v_window_tokens = p_.v_window_tokens;
    bm_ = std::make_unique<BlockManager>(c);
    k_content_.resize(p_.num_pages);
    v_content_.resize(p_.num_pages);
    sink_content_.resize(p_.num_seqs);
    for (auto& base : bases_) {
      base.resize(p_.sink_tokens + 6 * p_.page_tokens);
      for (int32_t& t : base) t = Uniform(0, 50);
    }
  }

  int32_t Uniform(int32_t lo, int32_t hi) {  // [lo, hi]
    return std::uniform_int_distribution<int32_t>(lo, hi)(rng_);
  }

  // The append rule, written independently of the manager.
  void ReferenceAppend(SeqKvCounters& c, int32_t n) const {
    const int32_t S = p_.sink_tokens, P = p_.page_tokens, W = p_.v_window_tokens;
    for (int32_t i = 0; i < n; ++i) {
      ++c.num_tokens;
      if (c.sink_tokens < S) {
        ++c.sink_tokens;
        continue;
      }
      if (++c.k_tail_tokens == P) {
        ++c.num_k_pages;
        c.k_tail_tokens = 0;
      }
      if (++c.v_tail_tokens == P + W) {
        ++c.num_v_pages;
        c.v_tail_tokens = W;
      }
    }
  }

  Key KeyOf(const ModelSeq& m, int32_t num_tokens) const {
    Key key{m.salt};
    key.insert(key.end(), m.tokens.begin(), m.tokens.begin() + num_tokens);
    return key;
  }

  void VerifySeq(SeqId seq) const {
    const ModelSeq& m = model_.at(seq);
    const SequencePages& pages = bm_->Get(seq);
    ASSERT_EQ(pages.counters, m.counters) << seq;
    ASSERT_EQ(pages.num_tokens, static_cast<int32_t>(m.tokens.size())) << seq;
    const int32_t S = p_.sink_tokens, P = p_.page_tokens;
    if (m.counters.sink_tokens == S) {
      ASSERT_EQ(sink_content_[pages.sink.value], KeyOf(m, S)) << seq << " " << pages.sink;
    }
    for (int32_t i = 0; i < m.counters.num_k_pages; ++i) {
      ASSERT_EQ(k_content_[pages.k_pages[i].value], KeyOf(m, S + P * (i + 1)))
          << seq << " page " << i << " " << pages.k_pages[i];
    }
    for (int32_t i = 0; i < m.counters.num_v_pages; ++i) {
      ASSERT_EQ(v_content_[pages.v_pages[i].value], KeyOf(m, S + P * (i + 1)))
          << seq << " page " << i << " " << pages.v_pages[i];
    }
  }

  std::vector<int32_t> RandomPrompt() {
    std::vector<int32_t> prompt;
    if (Uniform(0, 4) > 0) {  // mostly a prefix of a shared base: prefix-cache traffic
      const auto& base = bases_[Uniform(0, 2)];
      prompt.assign(base.begin(), base.begin() + Uniform(0, static_cast<int32_t>(base.size())));
    }
    const int32_t suffix = Uniform(0, 2 * p_.page_tokens);
    for (int32_t i = 0; i < suffix; ++i) prompt.push_back(Uniform(0, 50));
    return prompt;
  }

  void OpAllocate() {
    const SeqId seq(next_seq_++);
    const std::vector<int32_t> prompt = RandomPrompt();
    const int32_t salt = Uniform(0, 3) == 0 ? 1 : 0;
    // PlanAdmission predicts AllocateSequence + CanAppend of the rest (capped at a random
    // token budget) exactly, and changes nothing on the way.
    const int32_t budget = Uniform(1, 3 * p_.page_tokens);
    const BlockManagerStats stats_before = bm_->GetStats();
    const std::optional<int32_t> planned =
        bm_->PlanAdmission(prompt, salt == 0 ? "" : "tenant", budget);
    ASSERT_EQ(bm_->GetStats().prefix_cache_queries_tokens,
              stats_before.prefix_cache_queries_tokens);
    ASSERT_EQ(bm_->GetStats().sink_blocks.num_free, stats_before.sink_blocks.num_free);
    const std::optional<int32_t> cached =
        bm_->AllocateSequence(seq, prompt, salt == 0 ? "" : "tenant");
    if (!cached.has_value()) {
      ASSERT_FALSE(planned.has_value());
      ASSERT_FALSE(bm_->Contains(seq));
      return;
    }
    const int32_t S = p_.sink_tokens, P = p_.page_tokens;
    const int32_t len = static_cast<int32_t>(prompt.size());
    const std::pair<SeqId, int32_t> first_chunk[] = {{seq, std::min(len - *cached, budget)}};
    ASSERT_EQ(planned.has_value(), bm_->CanAppend(first_chunk)) << seq;
    if (planned.has_value()) ASSERT_EQ(*planned, *cached) << seq;
    ModelSeq m;
    m.salt = salt;
    if (*cached > 0) {
      ASSERT_LE(*cached, len - P) << "hit too close to the prompt end";
      ASSERT_EQ((*cached - S) % P, 0);
      const int32_t j = (*cached - S) / P;
      m.counters = SeqKvCounters{S, j, 0, j, 0, *cached};
      ++num_hits_;
    }
    m.tokens.assign(prompt.begin(), prompt.begin() + *cached);
    m.prompt_rest.assign(prompt.begin() + *cached, prompt.end());
    model_.emplace(seq, std::move(m));
    VerifySeq(seq);
  }

  void OpAppend(SeqId seq) {
    ModelSeq& m = model_.at(seq);
    std::vector<int32_t> tokens;
    if (!m.prompt_rest.empty()) {  // prefill, maybe chunked
      const int32_t n = Uniform(0, 1) ? static_cast<int32_t>(m.prompt_rest.size())
                                      : Uniform(1, static_cast<int32_t>(m.prompt_rest.size()));
      tokens.assign(m.prompt_rest.begin(), m.prompt_rest.begin() + n);
    } else {  // decode, sometimes a burst
      const int32_t n = Uniform(0, 3) ? 1 : Uniform(1, 2 * p_.page_tokens);
      for (int32_t i = 0; i < n; ++i) tokens.push_back(Uniform(0, 50));
    }
    const std::pair<SeqId, int32_t> request[] = {{seq, static_cast<int32_t>(tokens.size())}};
    const bool can = bm_->CanAppend(request);
    const SeqKvCounters before = bm_->Get(seq).counters;
    const std::optional<std::vector<PackJob>> jobs = bm_->AppendTokens(seq, tokens);
    ASSERT_EQ(jobs.has_value(), can);
    if (!jobs.has_value()) {
      ASSERT_EQ(bm_->Get(seq).counters, before);
      ++num_append_failures_;
      return;
    }
    m.tokens.insert(m.tokens.end(), tokens.begin(), tokens.end());
    if (!m.prompt_rest.empty())
      m.prompt_rest.erase(m.prompt_rest.begin(), m.prompt_rest.begin() + tokens.size());
    ReferenceAppend(m.counters, static_cast<int32_t>(tokens.size()));
    // Pack jobs: in order, consecutive page indices, naming the units now in the tables.
    const SequencePages& pages = bm_->Get(seq);
    int32_t next_k = before.num_k_pages, next_v = before.num_v_pages;
    const int32_t S = p_.sink_tokens, P = p_.page_tokens;
    int32_t last_token_end = 0;
    for (const PackJob& job : *jobs) {
      ASSERT_EQ(job.seq, seq);
      // A page seals when its last token (K) or that + W (V) arrives: non-decreasing in order.
      const int32_t end =
          S + P * (job.page_index + 1) + (job.kind == PackJob::kValue ? p_.v_window_tokens : 0);
      ASSERT_GE(end, last_token_end);
      last_token_end = end;
      if (job.kind == PackJob::kKey) {
        ASSERT_EQ(job.page_index, next_k++);
        ASSERT_EQ(pages.k_pages[job.page_index].value, job.page_id);
        k_content_[job.page_id] = KeyOf(m, S + P * (job.page_index + 1));
      } else {
        ASSERT_EQ(job.page_index, next_v++);
        ASSERT_EQ(pages.v_pages[job.page_index].value, job.page_id);
        v_content_[job.page_id] = KeyOf(m, S + P * (job.page_index + 1));
      }
    }
    ASSERT_EQ(next_k, m.counters.num_k_pages);
    ASSERT_EQ(next_v, m.counters.num_v_pages);
    if (before.sink_tokens < S && m.counters.sink_tokens == S) {
      sink_content_[pages.sink.value] = KeyOf(m, S);
    }
    VerifySeq(seq);
  }

  void OpFork(SeqId parent) {
    const SeqId child(next_seq_++);
    const SequencePages& from = bm_->Get(parent);
    const std::optional<std::vector<CopyJob>> copies = bm_->Fork(parent, child);
    if (!copies.has_value()) {
      ASSERT_FALSE(bm_->Contains(child));
      return;
    }
    const SequencePages& to = bm_->Get(child);
    ASSERT_EQ(to.k_pages, from.k_pages);
    ASSERT_EQ(to.v_pages, from.v_pages);
    ASSERT_NE(to.tail, from.tail);
    const bool sink_full = from.counters.sink_tokens == p_.sink_tokens;
    ASSERT_EQ(to.sink == from.sink, sink_full);
    for (const CopyJob& job : *copies) {
      if (job.kind == CopyJob::kSink) {
        ASSERT_EQ(job.src, from.sink.value);
        ASSERT_EQ(job.dst, to.sink.value);
      } else {
        ASSERT_EQ(job.src, from.tail.value);
        ASSERT_EQ(job.dst, to.tail.value);
      }
    }
    ++num_forks_;
    model_.emplace(child, model_.at(parent));
    VerifySeq(child);
  }

  void Run() {
    for (int32_t step = 0; step < p_.num_steps; ++step) {
      const int32_t op = Uniform(0, 99);
      std::vector<SeqId> live;
      for (const auto& [seq, m] : model_) live.push_back(seq);
      const SeqId any = live.empty() ? SeqId() : live[Uniform(0, live.size() - 1)];
      if (op < 18 || live.empty()) {
        OpAllocate();
      } else if (op < 60) {
        OpAppend(any);
      } else if (op < 68) {
        OpFork(any);
      } else if (op < 82) {
        bm_->Free(any);
        model_.erase(any);
      } else {
        bm_->CommitStep();
      }
      if (::testing::Test::HasFatalFailure()) {
        ADD_FAILURE() << "at step " << step;
        return;
      }
      bm_->CheckInvariants();
      if (step % 64 == 0) {
        for (const auto& [seq, m] : model_) VerifySeq(seq);
      }
    }
    // Drain: everything freed, every pool free or cached.
    bm_->CommitStep();
    for (const auto& [seq, m] : model_) {
      bm_->Free(seq);
      bm_->CheckInvariants();
    }
    model_.clear();
    const BlockManagerStats s = bm_->GetStats();
    for (const PoolStats& pool : {s.k_pages, s.v_pages, s.sink_blocks, s.tail_slots}) {
      EXPECT_EQ(pool.num_used, 0);
      EXPECT_EQ(pool.num_free + pool.num_cached, pool.num_total);
    }
    EXPECT_EQ(s.k_pages.num_cached, s.v_pages.num_cached);  // whole pairs only
    EXPECT_EQ(s.tail_slots.num_cached, 0);
    EXPECT_EQ(s.num_sequences, 0);
    // The operations exercised what they should.
    EXPECT_GT(num_hits_, 0);
    EXPECT_GT(num_forks_, 0);
    EXPECT_GT(num_append_failures_, 0);
    EXPECT_GT(s.prefix_cache_evictions, 0);
    EXPECT_GT(s.prefix_cache_hit_tokens, 0);
  }

  const Params p_;
  std::mt19937 rng_;
  std::unique_ptr<BlockManager> bm_;
  std::map<SeqId, ModelSeq> model_;  // ordered: deterministic for a seed
  std::vector<Key> k_content_, v_content_, sink_content_;
  std::vector<int32_t> bases_[3];
  int64_t next_seq_ = 0;
  int64_t num_hits_ = 0;
  int64_t num_forks_ = 0;
  int64_t num_append_failures_ = 0;
};

TEST_P(RandomOpsTest, InvariantsHoldAfterEveryStepAndEverythingFreesAtTheEnd) { Run(); }

std::vector<Params> AllParams() {
  std::vector<Params> out;
  for (uint32_t seed : {1u, 2u, 3u, 4u, 5u}) {
    out.push_back({/*S=*/4, /*P=*/8, /*W=*/8, /*pages=*/24, /*seqs=*/6, /*steps=*/5000, seed});
    out.push_back({/*S=*/4, /*P=*/8, /*W=*/0, /*pages=*/16, /*seqs=*/5, /*steps=*/3000, seed});
  }
  for (uint32_t seed : {11u, 12u}) {  // production geometry
    out.push_back({/*S=*/32, /*P=*/128, /*W=*/128, /*pages=*/20, /*seqs=*/6, /*steps=*/3000, seed});
  }
  return out;
}

INSTANTIATE_TEST_SUITE_P(Seeds, RandomOpsTest, ::testing::ValuesIn(AllParams()),
                         [](const ::testing::TestParamInfo<Params>& info) {
                           std::ostringstream os;
                           os << info.param;
                           return os.str();
                         });

}  // namespace
}  // namespace kitty::block_manager
