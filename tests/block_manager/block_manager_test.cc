// Scenario tests with exact unit ids, ref counts and eviction order (vLLM
// tests/v1/core/test_prefix_caching.py style). Geometry: S=32, P=128, W=128 unless noted.
#include "block_manager/block_manager.h"

#include <numeric>
#include <vector>

#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::block_manager {
namespace {

using ::kitty::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr int32_t kS = 32;
constexpr int32_t kP = 128;

BlockManagerConfig Config(int32_t pages, int32_t seqs, int32_t v_window = 128) {
  BlockManagerConfig c;
  c.num_k_pages = c.num_v_pages = pages;
  c.num_sink_blocks = c.num_tail_slots = seqs;
  c.v_window_tokens = v_window;
  return c;
}

// Tokens first, first+1, ..., first+n-1.
std::vector<int32_t> Range(int32_t first, int32_t n) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), first);
  return v;
}

std::vector<int32_t> Concat(std::vector<int32_t> a, const std::vector<int32_t>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

std::vector<int32_t> Prefix(const std::vector<int32_t>& v, size_t n) {
  return std::vector<int32_t>(v.begin(), v.begin() + n);
}

template <typename Id>
std::vector<int64_t> Values(const std::vector<Id>& ids) {
  std::vector<int64_t> out;
  for (Id id : ids) out.push_back(id.value);
  return out;
}

SeqKvCounters Counters(int32_t sink, int32_t pk, int32_t ck, int32_t pv, int32_t cv, int32_t n) {
  return SeqKvCounters{sink, pk, ck, pv, cv, n};
}

// KITTY.md §1.2 closed form, with the V window generalized to W (W = P in the reference).
SeqKvCounters ClosedForm(int32_t L, int32_t S, int32_t P, int32_t W) {
  if (L <= S) return Counters(L, 0, 0, 0, 0, L);
  const int32_t n = L - S;
  const int32_t nloc = std::min(W, n);
  const int32_t pv = (n - nloc) / P;
  return Counters(S, n / P, n % P, pv, n - P * pv, L);
}

// Admits `seq` and appends the uncached rest of its prompt, as the runtime would.
int32_t Prefill(BlockManager& bm, SeqId seq, const std::vector<int32_t>& prompt,
                std::string_view salt = "") {
  std::optional<int32_t> cached = bm.AllocateSequence(seq, prompt, salt);
  EXPECT_TRUE(cached.has_value());
  if (!cached.has_value()) return -1;
  std::vector<int32_t> rest(prompt.begin() + *cached, prompt.end());
  EXPECT_TRUE(bm.AppendTokens(seq, rest).has_value());
  bm.CheckInvariants();
  return *cached;
}

const SeqId kA(1), kB(2), kC(3), kD(4), kE(5);

TEST(BlockManagerTest, SharedPrefixHitsSinkAndSealedPairsAndDivergentSuffixComputes) {
  BlockManager bm(Config(/*pages=*/8, /*seqs=*/4));
  const std::vector<int32_t> a = Range(1000, kS + 4 * kP);  // 544 tokens
  ASSERT_EQ(bm.AllocateSequence(kA, a, ""), 0);
  std::optional<std::vector<PackJob>> jobs = bm.AppendTokens(kA, a);
  ASSERT_TRUE(jobs.has_value());
  // K page i seals at token S+128(i+1)-1; V page i 128 tokens later; K before V per token.
  EXPECT_THAT(*jobs,
              ElementsAre(PackJob{PackJob::kKey, kA, 0, 0}, PackJob{PackJob::kKey, kA, 1, 1},
                          PackJob{PackJob::kValue, kA, 0, 0}, PackJob{PackJob::kKey, kA, 2, 2},
                          PackJob{PackJob::kValue, kA, 1, 1}, PackJob{PackJob::kKey, kA, 3, 3},
                          PackJob{PackJob::kValue, kA, 2, 2}));
  EXPECT_EQ(bm.Get(kA).counters, Counters(32, 4, 0, 3, 128, 544));
  bm.CommitStep();
  bm.CheckInvariants();

  // B: A's 544 tokens + a 100-token suffix. Limit 644-128 = 516 allows j <= 3; segments 0..2
  // are registered (segment 3's V page is not sealed): 32 + 3*128 = 416 cached tokens.
  const std::vector<int32_t> b = Concat(a, Range(5000, 100));
  ASSERT_EQ(bm.AllocateSequence(kB, b, ""), 416);
  const SequencePages& pb = bm.Get(kB);
  EXPECT_EQ(pb.sink, SinkBlockId(0));
  EXPECT_EQ(pb.tail, TailSlotId(1));
  EXPECT_THAT(Values(pb.k_pages), ElementsAre(0, 1, 2));
  EXPECT_THAT(Values(pb.v_pages), ElementsAre(0, 1, 2));
  EXPECT_EQ(pb.counters, Counters(32, 3, 0, 3, 0, 416));
  EXPECT_EQ(pb.num_cached_tokens, 416);
  EXPECT_EQ(bm.sink_pool().ref_count(0), 2);
  for (int id : {0, 1, 2}) {
    EXPECT_EQ(bm.k_pool().ref_count(id), 2);
    EXPECT_EQ(bm.v_pool().ref_count(id), 2);
  }
  EXPECT_EQ(bm.k_pool().ref_count(3), 1);
  bm.CheckInvariants();

  // The suffix (228 tokens) seals one K page of B's own; the state equals a fresh prefill's.
  jobs = bm.AppendTokens(kB, std::vector<int32_t>(b.begin() + 416, b.end()));
  ASSERT_TRUE(jobs.has_value());
  EXPECT_THAT(*jobs, ElementsAre(PackJob{PackJob::kKey, kB, 3, 4}));
  EXPECT_EQ(pb.counters, ClosedForm(644, kS, kP, 128));
  EXPECT_EQ(pb.counters, Counters(32, 4, 100, 3, 228, 644));
  bm.CheckInvariants();

  // C shares only the sink and segment 0 with A, then diverges.
  bm.Free(kA);
  EXPECT_EQ(bm.k_pool().ref_count(0), 1);
  EXPECT_EQ(bm.k_pool().ref_count(3), 0);
  const std::vector<int32_t> c = Concat(Prefix(a, kS + kP), Range(9000, 300));
  ASSERT_EQ(bm.AllocateSequence(kC, c, ""), kS + kP);
  EXPECT_THAT(Values(bm.Get(kC).k_pages), ElementsAre(0));
  EXPECT_THAT(Values(bm.Get(kC).v_pages), ElementsAre(0));
  bm.CheckInvariants();

  const BlockManagerStats stats = bm.GetStats();
  EXPECT_EQ(stats.prefix_cache_queries_tokens, 544 + 644 + 460);
  EXPECT_EQ(stats.prefix_cache_hit_tokens, 416 + 160);
  EXPECT_EQ(stats.prefix_cache_evictions, 0);
}

TEST(BlockManagerTest, PrefixShorterThanOnePageOrTooCloseToPromptEndDoesNotHit) {
  BlockManager bm(Config(8, 8));
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);  // registers the sink and segment 0 (V page 0 seals at token 287)
  bm.CommitStep();
  // Shorter than S+P: S <= len-128 fails, no hit at all.
  EXPECT_EQ(bm.AllocateSequence(SeqId(10), Prefix(a, 100), ""), 0);
  EXPECT_EQ(bm.AllocateSequence(SeqId(11), Prefix(a, 159), ""), 0);
  // The sink alone once S <= len-128.
  EXPECT_EQ(bm.AllocateSequence(SeqId(12), Prefix(a, 160), ""), kS);
  // Segment 0 needs S+128 <= len-128, i.e. len >= 288.
  EXPECT_EQ(bm.AllocateSequence(SeqId(13), Prefix(a, 287), ""), kS);
  EXPECT_EQ(bm.AllocateSequence(SeqId(14), Prefix(a, 288), ""), kS + kP);
  EXPECT_EQ(bm.Get(SeqId(14)).counters, Counters(32, 1, 0, 1, 0, 160));
  bm.CheckInvariants();
}

TEST(BlockManagerTest, PromptLenMinus128RuleRebuildsTheFreshState) {
  BlockManager bm(Config(8, 4));
  const std::vector<int32_t> a = Range(0, kS + 2 * kP);  // 288
  Prefill(bm, kA, a);
  bm.CommitStep();
  // Same prompt: j = 1 (160 <= 288-128), the 128-token suffix refills K tail and V window.
  EXPECT_EQ(Prefill(bm, kB, a), kS + kP);
  EXPECT_EQ(bm.Get(kB).counters, bm.Get(kA).counters);
  EXPECT_EQ(bm.Get(kB).counters, ClosedForm(288, kS, kP, 128));
  EXPECT_EQ(bm.Get(kB).k_pages[0], bm.Get(kA).k_pages[0]);  // shared
  EXPECT_NE(bm.Get(kB).k_pages[1], bm.Get(kA).k_pages[1]);  // recomputed
}

TEST(BlockManagerTest, EntriesBecomeFindableOnlyAtCommitStep) {
  BlockManager bm(Config(8, 4));
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);
  EXPECT_EQ(bm.AllocateSequence(kB, a, ""), 0);  // same step: pages still being written
  bm.CommitStep();
  EXPECT_EQ(bm.AllocateSequence(kC, a, ""), kS + kP);
  bm.CheckInvariants();
}

TEST(BlockManagerTest, FreeBeforeCommitStepDropsPendingEntries) {
  BlockManager bm(Config(8, 4));
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);
  bm.Free(kA);  // e.g. preempted before the forward pass ran: its pages were never written
  bm.CommitStep();
  EXPECT_EQ(bm.GetStats().k_pages.num_cached, 0);
  EXPECT_EQ(bm.GetStats().sink_blocks.num_cached, 0);
  EXPECT_EQ(bm.AllocateSequence(kB, a, ""), 0);
  bm.CheckInvariants();
}

TEST(BlockManagerTest, DuplicatesComputedInOneStepKeepTheFirstEntry) {
  BlockManager bm(Config(8, 4));
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);  // sink 0, K 0 1, V 0
  Prefill(bm, kB, a);  // sink 1, K 2 3, V 1
  bm.CommitStep();
  EXPECT_TRUE(bm.sink_pool().has_hash(0));
  EXPECT_FALSE(bm.sink_pool().has_hash(1));
  EXPECT_TRUE(bm.k_pool().has_hash(0));
  EXPECT_FALSE(bm.k_pool().has_hash(2));
  ASSERT_EQ(bm.AllocateSequence(kC, a, ""), kS + kP);
  EXPECT_EQ(bm.Get(kC).sink, SinkBlockId(0));
  EXPECT_THAT(Values(bm.Get(kC).k_pages), ElementsAre(0));
  EXPECT_THAT(Values(bm.Get(kC).v_pages), ElementsAre(0));
  bm.CheckInvariants();
}

TEST(BlockManagerTest, ForkSharesSealedUnitsAndChildOutlivesParent) {
  BlockManager bm(Config(8, 4));
  Prefill(bm, kA, Range(0, 200));
  bm.CommitStep();
  EXPECT_EQ(bm.Get(kA).counters, Counters(32, 1, 40, 0, 168, 200));
  std::optional<std::vector<CopyJob>> copies = bm.Fork(kA, kB);
  ASSERT_TRUE(copies.has_value());
  EXPECT_THAT(*copies, ElementsAre(CopyJob{CopyJob::kTail, 0, 1}));  // full sink: shared
  EXPECT_EQ(bm.Get(kB).sink, SinkBlockId(0));
  EXPECT_EQ(bm.Get(kB).tail, TailSlotId(1));
  EXPECT_THAT(Values(bm.Get(kB).k_pages), ElementsAre(0));
  EXPECT_EQ(bm.Get(kB).counters, bm.Get(kA).counters);
  EXPECT_EQ(bm.sink_pool().ref_count(0), 2);
  EXPECT_EQ(bm.k_pool().ref_count(0), 2);
  bm.CheckInvariants();

  bm.Free(kA);
  EXPECT_EQ(bm.sink_pool().ref_count(0), 1);
  EXPECT_EQ(bm.k_pool().ref_count(0), 1);
  EXPECT_EQ(bm.tail_pool().ref_count(0), 0);
  bm.CheckInvariants();

  // 88 more tokens: K tail 40+88 = 128 seals K page 1; V tail 168+88 = 256 seals V page 0.
  std::optional<std::vector<PackJob>> jobs = bm.AppendTokens(kB, Range(200, 88));
  ASSERT_TRUE(jobs.has_value());
  EXPECT_THAT(*jobs,
              ElementsAre(PackJob{PackJob::kKey, kB, 1, 1}, PackJob{PackJob::kValue, kB, 0, 0}));
  EXPECT_EQ(bm.Get(kB).counters, Counters(32, 2, 0, 1, 128, 288));
  bm.CheckInvariants();
  bm.Free(kB);
  EXPECT_EQ(bm.GetStats().k_pages.num_used, 0);
  bm.CheckInvariants();
}

TEST(BlockManagerTest, ForkCopiesAPartialSinkAndWritesStayPrivate) {
  BlockManager bm(Config(8, 4));
  Prefill(bm, kA, Range(0, 10));
  std::optional<std::vector<CopyJob>> copies = bm.Fork(kA, kB);
  ASSERT_TRUE(copies.has_value());
  EXPECT_THAT(*copies, ElementsAre(CopyJob{CopyJob::kSink, 0, 1}));  // tails are empty
  EXPECT_EQ(bm.Get(kB).sink, SinkBlockId(1));
  ASSERT_TRUE(bm.AppendTokens(kB, Range(10, 30)).has_value());
  ASSERT_TRUE(bm.AppendTokens(kA, Range(500, 5)).has_value());
  EXPECT_EQ(bm.Get(kB).counters, Counters(32, 0, 8, 0, 8, 40));
  EXPECT_EQ(bm.Get(kA).counters, Counters(15, 0, 0, 0, 0, 15));
  EXPECT_EQ(bm.sink_pool().ref_count(0), 1);
  EXPECT_EQ(bm.sink_pool().ref_count(1), 1);
  bm.CheckInvariants();
  // An empty sequence forks without copies.
  ASSERT_TRUE(bm.AllocateSequence(kC, {}, "").has_value());
  copies = bm.Fork(kC, kD);
  ASSERT_TRUE(copies.has_value());
  EXPECT_THAT(*copies, IsEmpty());
  // No tail slot left: nullopt and nothing changes.
  EXPECT_FALSE(bm.Fork(kA, kE).has_value());
  EXPECT_FALSE(bm.Contains(kE));
  bm.CheckInvariants();
}

TEST(BlockManagerTest, EvictionUnderPressureFollowsLruOrder) {
  BlockManager bm(Config(/*pages=*/4, /*seqs=*/4));
  const std::vector<int32_t> a = Range(0, 288);
  const std::vector<int32_t> b = Range(10000, 288);
  Prefill(bm, kA, a);  // sink 0, tail 0, K 0 1, V 0
  Prefill(bm, kB, b);  // sink 1, tail 1, K 2 3, V 1
  bm.CommitStep();
  bm.Free(kA);  // last page first
  bm.Free(kB);
  bm.CheckInvariants();
  EXPECT_THAT(bm.k_pool().FreeQueue(), ElementsAre(1, 0, 3, 2));
  EXPECT_THAT(bm.v_pool().FreeQueue(), ElementsAre(2, 3, 0, 1));
  EXPECT_THAT(bm.sink_pool().FreeQueue(), ElementsAre(2, 3, 0, 1));
  BlockManagerStats stats = bm.GetStats();
  EXPECT_EQ(stats.k_pages.num_used, 0);
  EXPECT_EQ(stats.k_pages.num_free, 2);    // K1, K3: their V pages never sealed
  EXPECT_EQ(stats.k_pages.num_cached, 2);  // K0 (A's segment 0), K2 (B's)
  EXPECT_EQ(stats.v_pages.num_cached, 2);
  EXPECT_EQ(stats.sink_blocks.num_cached, 2);

  // C needs two K pages and one V page: pops K1 (plain), then K0 — evicting A's segment 0,
  // whose V page 0 stays in the free queue as a plain page.
  std::optional<std::vector<PackJob>> jobs;
  ASSERT_EQ(bm.AllocateSequence(kC, Range(20000, 288), ""), 0);
  EXPECT_EQ(bm.Get(kC).sink, SinkBlockId(2));
  jobs = bm.AppendTokens(kC, Range(20000, 288));
  ASSERT_TRUE(jobs.has_value());
  EXPECT_THAT(*jobs, ElementsAre(PackJob{PackJob::kKey, kC, 0, 1}, PackJob{PackJob::kKey, kC, 1, 0},
                                 PackJob{PackJob::kValue, kC, 0, 2}));
  stats = bm.GetStats();
  EXPECT_EQ(stats.prefix_cache_evictions, 1);
  EXPECT_FALSE(bm.v_pool().has_hash(0));
  EXPECT_EQ(stats.v_pages.num_cached, 1);
  EXPECT_THAT(bm.v_pool().FreeQueue(), ElementsAre(3, 0, 1));
  bm.CheckInvariants();

  // A's sink survives (the sink pool had plain blocks to hand out); its segment 0 is gone.
  EXPECT_EQ(bm.AllocateSequence(kD, a, ""), kS);
  EXPECT_EQ(bm.Get(kD).sink, SinkBlockId(0));
  // B's entries, freed later, are intact.
  EXPECT_EQ(bm.AllocateSequence(kE, b, ""), kS + kP);
  EXPECT_THAT(Values(bm.Get(kE).k_pages), ElementsAre(2));
  EXPECT_THAT(Values(bm.Get(kE).v_pages), ElementsAre(1));
  bm.CheckInvariants();
}

TEST(BlockManagerTest, CacheSaltIsolatesTenants) {
  BlockManager bm(Config(8, 8));
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a, "tenant-a");
  bm.CommitStep();
  EXPECT_EQ(bm.AllocateSequence(kB, a, "tenant-b"), 0);
  EXPECT_EQ(bm.AllocateSequence(kC, a, ""), 0);
  EXPECT_EQ(bm.AllocateSequence(kD, a, "tenant-a"), kS + kP);
  bm.CheckInvariants();
}

TEST(BlockManagerTest, PrefixCachingDisabledNeverHits) {
  BlockManagerConfig config = Config(8, 4);
  config.enable_prefix_caching = false;
  BlockManager bm(config);
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);
  bm.CommitStep();
  EXPECT_EQ(bm.AllocateSequence(kB, a, ""), 0);
  EXPECT_EQ(bm.GetStats().prefix_cache_queries_tokens, 0);
  bm.CheckInvariants();
}

// KITTY.md §8.5: bookkeeping after a prefill of L0 and then decode, L0 < S and L0 − S ∈
// {0, 127, 128, 255, 256}, in the quantized modes (W = 128) and mode auto (W = 0).
TEST(BlockManagerTest, AppendRuleMatchesClosedFormAfterEveryDecodeStep) {
  for (int32_t w : {128, 0}) {
    BlockManager bm(Config(/*pages=*/16, /*seqs=*/1, w));
    int64_t id = 100;
    for (int32_t l0 : {0, 1, 31, 32, 33, kS + 127, kS + 128, kS + 129, kS + 255, kS + 256, kS + 257,
                       kS + 1000}) {
      SCOPED_TRACE(::testing::Message() << "W=" << w << " L0=" << l0);
      const SeqId seq(id++);
      ASSERT_EQ(Prefill(bm, seq, Range(7, l0)), 0);
      EXPECT_EQ(bm.Get(seq).counters, ClosedForm(l0, kS, kP, w));
      for (int32_t l = l0 + 1; l <= l0 + 300; ++l) {
        const std::optional<std::vector<PackJob>> jobs = bm.AppendTokens(seq, {l});
        ASSERT_TRUE(jobs.has_value());
        const SeqKvCounters c = bm.Get(seq).counters;
        ASSERT_EQ(c, ClosedForm(l, kS, kP, w));
        // The page(s) sealing at this step, K before V.
        const SeqKvCounters before = ClosedForm(l - 1, kS, kP, w);
        std::vector<PackJob> expected;
        if (c.num_k_pages > before.num_k_pages) {
          expected.push_back(
              {PackJob::kKey, seq, before.num_k_pages, bm.Get(seq).k_pages.back().value});
        }
        if (c.num_v_pages > before.num_v_pages) {
          expected.push_back(
              {PackJob::kValue, seq, before.num_v_pages, bm.Get(seq).v_pages.back().value});
        }
        ASSERT_EQ(*jobs, expected);
        if (w == 128 && l - kS >= kP) {  // KITTY.md §1.2: pk = pv+1, ck = cv once L−S ≥ P
          ASSERT_EQ(c.num_k_pages, c.num_v_pages + 1);
          ASSERT_EQ(c.k_tail_tokens, c.v_tail_tokens - 128);
        }
      }
      bm.CheckInvariants();
      bm.Free(seq);
    }
  }
}

TEST(BlockManagerTest, PlanAppendSumsRequestsAndFailureChangesNothing) {
  BlockManager bm(Config(/*pages=*/2, /*seqs=*/2));
  ASSERT_EQ(bm.AllocateSequence(kA, {}, ""), 0);
  const std::pair<SeqId, int32_t> fits[] = {{kA, kS + 2 * kP}};  // 2 K pages, 1 V page
  EXPECT_TRUE(bm.CanAppend(fits));
  const std::pair<SeqId, int32_t> too_many[] = {{kA, kS + 3 * kP}};
  EXPECT_FALSE(bm.CanAppend(too_many));
  const std::pair<SeqId, int32_t> summed[] = {{kA, kS + kP}, {kA, 2 * kP}};  // 1 + 2 K pages
  EXPECT_FALSE(bm.CanAppend(summed));
  EXPECT_FALSE(bm.AppendTokens(kA, Range(0, kS + 3 * kP)).has_value());
  EXPECT_EQ(bm.Get(kA).counters, SeqKvCounters{});
  EXPECT_EQ(bm.GetStats().k_pages.num_used, 0);
  ASSERT_TRUE(bm.AppendTokens(kA, Range(0, kS + 2 * kP)).has_value());
  EXPECT_EQ(bm.FreeTokenCapacity(), 0);  // one V page left, no K page
  bm.CheckInvariants();
}

TEST(BlockManagerTest, AllocateSequenceNeedsATailSlotAndASinkUnlessTheSinkHits) {
  BlockManagerConfig config = Config(8, 2);
  config.num_sink_blocks = 1;
  BlockManager bm(config);
  const std::vector<int32_t> a = Range(0, 300);
  Prefill(bm, kA, a);
  bm.CommitStep();
  EXPECT_EQ(bm.AllocateSequence(kB, Range(5000, 300), ""), std::nullopt);  // no sink block
  EXPECT_FALSE(bm.Contains(kB));
  EXPECT_EQ(bm.AllocateSequence(kC, a, ""), kS + kP);         // shares A's sink
  EXPECT_EQ(bm.AllocateSequence(kD, a, ""), std::nullopt);    // no tail slot
  EXPECT_EQ(bm.GetStats().prefix_cache_queries_tokens, 600);  // failures are not counted
  bm.CheckInvariants();
}

TEST(BlockManagerTest, StatsCountBytesByStorageKindAndBitsPerElement) {
  BlockManagerConfig config = Config(8, 2);
  config.k_page_bytes = 1000;
  config.v_page_bytes = 900;
  config.sink_block_bytes = 500;
  config.tail_slot_bytes = 3000;
  config.elements_per_token = 256;
  BlockManager bm(config);
  Prefill(bm, kA, Range(0, 300));  // sink 32, K pages 2 + tail 12, V page 1 + tail 140
  const BlockManagerStats s = bm.GetStats();
  EXPECT_EQ(s.num_sequences, 1);
  EXPECT_EQ(s.k_pages.num_used, 2);
  EXPECT_EQ(s.k_pages.num_free, 6);
  EXPECT_EQ(s.v_pages.num_used, 1);
  EXPECT_DOUBLE_EQ(s.page_usage, 2.0 / 8);  // the fuller pool (K), not 3 of 16 pages
  EXPECT_EQ(s.sink_bytes_in_use, 500);
  EXPECT_EQ(s.tail_bytes_in_use, 3000);
  EXPECT_EQ(s.k_page_bytes_in_use, 2000);
  EXPECT_EQ(s.v_page_bytes_in_use, 900);
  EXPECT_EQ(s.total_bytes_in_use, 6400);
  EXPECT_EQ(s.num_logical_tokens, 300);
  // K or V halves: sink 2*32 + tails 12+140 + pages 3*128 = 600; * 256/2 elements.
  EXPECT_EQ(s.num_stored_kv_elements, 600 * 128);
  // Stored: pages 2900 + full-precision halves (64 sink + 152 tail) at 500 / 64 bytes each
  // (the tail slot's 3000 bytes hold 384 such rows, 232 of them empty).
  EXPECT_EQ(s.stored_bytes, 2900 + 216 * 500 / 64);
  EXPECT_DOUBLE_EQ(s.effective_bits_per_element, 4587.0 * 8 / (600 * 128));
  EXPECT_DOUBLE_EQ(s.compression_vs_fp16, 16.0 / (4587.0 * 8 / (600 * 128)));
  EXPECT_DOUBLE_EQ(s.logical_compression_vs_fp16, 300.0 * 256 * 2 / 6400);
}

// Full-precision storage everywhere (mode auto, float32 rows of 64 elements = 256 bytes): the
// effective bits are the dtype's, whatever the tails' fill (the reserved, empty tail rows made
// it read 34-54 bits before).
TEST(BlockManagerTest, UnquantizedStorageIsExactlyItsDtypeBits) {
  constexpr int64_t kRow = 256;  // one K or V row of a token, all layers and heads
  BlockManagerConfig config = Config(16, 4, /*v_window=*/0);
  config.k_page_bytes = config.v_page_bytes = kP * kRow;
  config.sink_block_bytes = 2 * kS * kRow;
  config.tail_slot_bytes = 2 * kP * kRow;
  config.elements_per_token = 2 * 64;
  BlockManager bm(config);
  for (int32_t len : {20, 100, 300, 500}) {
    Prefill(bm, SeqId(100 + len), Range(len, len));
    EXPECT_DOUBLE_EQ(bm.GetStats().effective_bits_per_element, 32.0) << len;
  }
}

TEST(BlockManagerTest, FreeingAllSequencesLeavesZeroUnitsInUse) {
  BlockManager bm(Config(16, 6));
  Prefill(bm, kA, Range(0, 700));
  bm.CommitStep();
  Prefill(bm, kB, Range(0, 500));
  ASSERT_TRUE(bm.Fork(kB, kC).has_value());
  Prefill(bm, kD, Range(3, 20));
  ASSERT_TRUE(bm.Fork(kD, kE).has_value());
  bm.CommitStep();
  for (SeqId s : {kC, kA, kE, kB, kD}) {
    bm.Free(s);
    bm.CheckInvariants();
  }
  const BlockManagerStats s = bm.GetStats();
  for (const PoolStats& p : {s.k_pages, s.v_pages, s.sink_blocks, s.tail_slots}) {
    EXPECT_EQ(p.num_used, 0);
    EXPECT_EQ(p.num_free + p.num_cached, p.num_total);
  }
  EXPECT_EQ(s.total_bytes_in_use, 0);
  EXPECT_EQ(s.num_sequences, 0);
  EXPECT_GT(s.k_pages.num_cached, 0);
}

TEST(SizeBlockManagerTest, ReservesSequenceSlotsThenFillsPages) {
  BlockManagerConfig units;
  units.k_page_bytes = 1000;
  units.v_page_bytes = 900;
  units.sink_block_bytes = 500;
  units.tail_slot_bytes = 3000;
  ASSERT_OK_AND_ASSIGN(BlockManagerConfig c, SizeBlockManager(1'000'000, 10, units));
  EXPECT_EQ(c.num_sink_blocks, 10);
  EXPECT_EQ(c.num_tail_slots, 10);
  EXPECT_EQ(c.num_k_pages, (1'000'000 - 10 * 3500) / 1900);
  EXPECT_EQ(c.num_v_pages, c.num_k_pages);
  // A small budget caps the sequence count so each keeps room for a page pair.
  ASSERT_OK_AND_ASSIGN(c, SizeBlockManager(3 * 5400 + 10, 100, units));
  EXPECT_EQ(c.num_tail_slots, 3);
  EXPECT_EQ(c.num_k_pages, 3);
  // With 4 page pairs expected per sequence, each slot keeps room for them: 3500 + 4*1900.
  ASSERT_OK_AND_ASSIGN(c, SizeBlockManager(10 * 11100, 100, units, /*pages_per_seq=*/4));
  EXPECT_EQ(c.num_tail_slots, 10);
  EXPECT_EQ(c.num_k_pages, 40);
  EXPECT_THAT(SizeBlockManager(5000, 10, units),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("cannot hold")));
  units.k_page_bytes = 0;
  EXPECT_THAT(SizeBlockManager(1'000'000, 10, units),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unit sizes")));
}

// MaxSequenceTokens against the block manager itself: one sequence alone appends token by
// token until AppendTokens refuses; that count is the bound (Kitty window and mode auto).
TEST(MaxSequenceTokensTest, IsWhereAppendingAloneFirstFails) {
  for (int32_t window : {128, 0}) {
    for (int32_t pages : {1, 2, 5}) {
      const BlockManagerConfig c = Config(pages, 2, window);
      BlockManager bm(c);
      ASSERT_TRUE(bm.AllocateSequence(kA, {}, "").has_value());
      int32_t held = 0;
      while (bm.AppendTokens(kA, {held}).has_value()) ++held;
      EXPECT_EQ(MaxSequenceTokens(c), held) << "W " << window << ", " << pages << " pages";
      bm.CheckInvariants();
    }
  }
  EXPECT_EQ(MaxSequenceTokens(Config(10, 0)), 0);
}

// PagesForTokens is what a sequence of that length actually holds (no more: sizing reserves
// it per sequence slot), in the Kitty geometry and in mode auto.
TEST(PagesForTokensTest, IsWhatASequenceOfThatLengthHolds) {
  for (int32_t window : {128, 0}) {
    BlockManager bm(Config(100, 1, window));
    ASSERT_TRUE(bm.AllocateSequence(kA, {}, "").has_value());
    for (int32_t n = 0; n <= 8 * kP + kS; ++n) {
      if (n > 0) ASSERT_TRUE(bm.AppendTokens(kA, {n}).has_value());
      const SequencePages& p = bm.Get(kA);
      EXPECT_EQ(PagesForTokens(n, bm.config()), std::max(p.k_pages.size(), p.v_pages.size()))
          << "W " << window << ", " << n << " tokens";
    }
  }
  // 65 + 8127 tokens (the long-generation benchmark): the K/V of 8191 tokens are 63 K pages
  // and 62 V pages, where a rounded-up (8192 - 32) / 128 reserved 64 pairs.
  EXPECT_EQ(PagesForTokens(8191, Config(0, 0)), 63);
}

TEST(BlockManagerDeathTest, MisuseCrashesNamingTheBug) {
  BlockManager bm(Config(2, 2));
  ASSERT_TRUE(bm.AllocateSequence(kA, {}, "").has_value());
  EXPECT_DEATH(bm.AllocateSequence(kA, {}, ""), "existing sequence");
  EXPECT_DEATH(bm.Get(kB), "unknown sequence");
  EXPECT_DEATH(bm.Fork(kA, kA), "existing sequence");
  EXPECT_DEATH(bm.Free(kB), "unknown sequence");
}

TEST(PrefixHashTest, ChainDependsOnSaltParentAndEveryToken) {
  const BlockHash root = HashSalt("");
  EXPECT_EQ(HashSegment(root, Range(0, 32)), HashSegment(HashSalt(""), Range(0, 32)));
  EXPECT_NE(HashSalt(""), HashSalt("a"));
  EXPECT_NE(HashSegment(root, Range(0, 32)), HashSegment(HashSalt("a"), Range(0, 32)));
  EXPECT_NE(HashSegment(root, Range(0, 32)), HashSegment(root, Range(1, 32)));
  EXPECT_NE(HashSegment(root, Range(0, 32)), HashSegment(root, Range(0, 31)));
  std::vector<int32_t> t = Range(0, 128);
  const BlockHash h = HashSegment(root, t);
  for (int i = 0; i < 128; ++i) {
    t[i] ^= 1;
    EXPECT_NE(HashSegment(root, t), h) << i;
    t[i] ^= 1;
  }
}

}  // namespace
}  // namespace kitty::block_manager
