#include "runtime/sampling.h"

#include <cmath>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

// The CPU sampler against hand-derived expectations (vLLM's semantics): the penalties through
// greedy picks that a wrong formula or order would change, and the sampled frequencies against
// distributions worked out by hand from logits ln p.
namespace kitty::runtime {
namespace {

int32_t Greedy(SamplingParams p, const std::vector<float>& logits,
               const std::vector<int32_t>& prompt, const std::vector<int32_t>& output) {
  p.temperature = 0.0f;
  Sampler s(p, 1);
  return s.Sample(logits, prompt, output).token_id;
}

TEST(SamplerTest, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogitsOnce) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  // token 0 in the prompt: 2.0 / 2 = 1.0 < 1.5
  EXPECT_EQ(Greedy(p, {2.0f, 1.5f}, {0}, {}), 1);
  // negative: -1.0 * 2 = -2.0 < -1.5
  EXPECT_EQ(Greedy(p, {-1.0f, -1.5f}, {}, {0}), 1);
  // once per token, however often it occurs: 4.0 / 2 = 2.0 > 1.5 (three times: 0.5)
  EXPECT_EQ(Greedy(p, {4.0f, 1.5f}, {0, 0}, {0, 0, 0}), 0);
  p.repetition_penalty = 1.0f;
  EXPECT_EQ(Greedy(p, {2.0f, 1.5f}, {0}, {0}), 0);
}

TEST(SamplerTest, FrequencyCountsOutputTokensAndPresenceCountsThemOnce) {
  SamplingParams p;
  p.frequency_penalty = 0.4f;
  EXPECT_EQ(Greedy(p, {3.0f, 2.0f}, {}, {0, 0, 0}), 1);  // 3 - 3 * 0.4 = 1.8 < 2
  EXPECT_EQ(Greedy(p, {3.0f, 2.0f}, {}, {0, 0}), 0);     // 3 - 2 * 0.4 = 2.2 > 2
  EXPECT_EQ(Greedy(p, {3.0f, 2.0f}, {0, 0, 0}, {}), 0);  // prompt tokens do not count
  p.frequency_penalty = 0.0f;
  p.presence_penalty = 0.5f;
  EXPECT_EQ(Greedy(p, {3.0f, 2.6f}, {}, {0, 0, 0}), 1);  // 3 - 0.5 = 2.5 < 2.6
  EXPECT_EQ(Greedy(p, {3.0f, 2.4f}, {}, {0, 0, 0}), 0);  // 2.5 > 2.4: subtracted once
  EXPECT_EQ(Greedy(p, {3.0f, 2.6f}, {0}, {}), 0);        // prompt tokens do not count
  // negative presence penalty rewards repeats
  p.presence_penalty = -0.5f;
  EXPECT_EQ(Greedy(p, {2.0f, 2.4f}, {}, {0}), 0);
}

TEST(SamplerTest, RepetitionPenaltyComesBeforePresence) {
  SamplingParams p;
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.4f;
  // 3 / 2 - 0.4 = 1.1 < 1.2; the other order, (3 - 0.4) / 2 = 1.3, would keep token 0
  EXPECT_EQ(Greedy(p, {3.0f, 1.2f}, {}, {0}), 1);
}

TEST(SamplerTest, GreedyTakesTheFirstMaximumAndTinyTemperaturesAreGreedy) {
  SamplingParams p;
  EXPECT_EQ(Greedy(p, {1.0f, 3.0f, 3.0f, 2.0f}, {}, {}), 1);
  p.temperature = 1e-6f;  // below kGreedyTemperature
  Sampler s(p, 7);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(s.Sample({0.0f, 0.1f, 0.0f}, {}, {}).token_id, 1);
}

// Draws n tokens from logits ln(probs) and returns the frequency of each.
std::vector<double> Frequencies(const SamplingParams& p, const std::vector<double>& probs, int n) {
  std::vector<float> logits;
  for (double q : probs) logits.push_back(static_cast<float>(std::log(q)));
  Sampler s(p, 12345);
  std::vector<double> f(probs.size(), 0.0);
  for (int i = 0; i < n; ++i) f[s.Sample(logits, {}, {}).token_id] += 1.0 / n;
  return f;
}

// Frequencies within 5 standard deviations of `want` (and exactly 0 where want is 0).
void ExpectDistribution(const std::vector<double>& got, const std::vector<double>& want, int n) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    if (want[i] == 0.0) {
      EXPECT_EQ(got[i], 0.0) << "token " << i << " is outside the kept set";
    } else {
      const double sd = std::sqrt(want[i] * (1 - want[i]) / n);
      EXPECT_NEAR(got[i], want[i], 5 * sd) << "token " << i;
    }
  }
}

TEST(SamplerTest, SampledFrequenciesFollowTemperatureTopKTopPAndMinP) {
  const std::vector<double> probs = {0.5, 0.25, 0.125, 0.0625, 0.0625};
  constexpr int kN = 40000;
  SamplingParams p;  // T = 1: the distribution itself
  ExpectDistribution(Frequencies(p, probs, kN), probs, kN);
  p.temperature = 0.5f;  // p^2, normalized: (64, 16, 4, 1, 1) / 86
  ExpectDistribution(Frequencies(p, probs, kN),
                     {64.0 / 86, 16.0 / 86, 4.0 / 86, 1.0 / 86, 1.0 / 86}, kN);
  p = SamplingParams();
  p.top_k = 2;  // (0.5, 0.25) renormalized
  ExpectDistribution(Frequencies(p, probs, kN), {2.0 / 3, 1.0 / 3, 0, 0, 0}, kN);
  p = SamplingParams();
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75: the first two
  ExpectDistribution(Frequencies(p, probs, kN), {2.0 / 3, 1.0 / 3, 0, 0, 0}, kN);
  p.top_p = 0.8f;  // 0.75 < 0.8 <= 0.875: the first three
  ExpectDistribution(Frequencies(p, probs, kN), {4.0 / 7, 2.0 / 7, 1.0 / 7, 0, 0}, kN);
  p = SamplingParams();
  p.min_p = 0.2f;  // keep p >= 0.2 * 0.5 = 0.1
  ExpectDistribution(Frequencies(p, probs, kN), {4.0 / 7, 2.0 / 7, 1.0 / 7, 0, 0}, kN);
  p = SamplingParams();
  p.top_k = 4;  // top-k, then min-p (>= 0.3 * 0.5 of the renormalized top), then top-p
  p.min_p = 0.3f;
  p.top_p = 0.9f;
  // top 4: (8, 4, 2, 1) / 15; min-p keeps >= 0.3 * 8 / 15: (8, 4); top-p 0.9 keeps both
  ExpectDistribution(Frequencies(p, probs, kN), {2.0 / 3, 1.0 / 3, 0, 0, 0}, kN);
}

TEST(SamplerTest, SeededRequestsRepeatAndIgnoreTheFallbackSeed) {
  const std::vector<float> logits = {0.0f, 0.2f, 0.4f, 0.1f, -0.3f, 0.3f, 0.0f, 0.25f};
  auto draws = [&](const SamplingParams& p, uint64_t fallback_seed) {
    Sampler s(p, fallback_seed);
    std::vector<int32_t> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(s.Sample(logits, {}, {}).token_id);
    return ids;
  };
  SamplingParams p;
  p.seed = 99;
  EXPECT_EQ(draws(p, 1), draws(p, 2));
  p.seed.reset();  // unseeded: the fallback seed decides
  EXPECT_EQ(draws(p, 1), draws(p, 1));
  EXPECT_NE(draws(p, 1), draws(p, 2));
}

TEST(SamplerTest, LogprobsAreOfTheUnmodifiedDistribution) {
  SamplingParams p;
  p.temperature = 0.0f;
  p.logprobs = 3;
  p.repetition_penalty = 4.0f;  // changes the pick, not the reported logprobs
  const std::vector<float> logits = {
      static_cast<float>(std::log(0.5)), static_cast<float>(std::log(0.3)),
      static_cast<float>(std::log(0.1)), static_cast<float>(std::log(0.1))};
  Sampler s(p, 1);
  const SampleResult r = s.Sample(logits, {0}, {});
  EXPECT_EQ(r.token_id, 1);  // ln 0.5 * 4 < ln 0.3
  EXPECT_NEAR(r.logprob, std::log(0.3), 1e-5);
  ASSERT_EQ(r.top.size(), 3u);
  EXPECT_EQ(r.top[0].token_id, 0);
  EXPECT_NEAR(r.top[0].logprob, std::log(0.5), 1e-5);
  EXPECT_EQ(r.top[1].token_id, 1);
  EXPECT_EQ(r.top[2].token_id, 2);  // ties: the lower id first
  EXPECT_NEAR(r.top[2].logprob, std::log(0.1), 1e-5);
}

}  // namespace
}  // namespace kitty::runtime
