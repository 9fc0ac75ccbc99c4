// GPU tests of the device sampler (kernels/cuda/sampling.h driven by Sampler::DeviceRow), label
// gpu; skipped without a CUDA device.
//   - greedy, penalties and logprobs: the same token, logprob and top-N as runtime::Sampler on
//     the CPU for the same row (ties included: first index wins), vocabularies 1000 and 151936;
//   - temperature / top-k / top-p / min-p: N rows share one logits row and draw stratified
//     uniforms (i + 0.5) / N, so the count of each token must be N times its exact probability
//     (computed in double with the CPU sampler's rules: sorted prefix, top-k, min-p, top-p,
//     renormalise) within 2 draws, and no draw may fall outside the kept set.
#include "gtest/gtest.h"

#if !defined(KITTY_HAVE_CUDA_RUNNER)
TEST(DeviceSamplingTest, NoCudaBackend) { GTEST_SKIP() << "built without KITTY_CUDA"; }
#else
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <vector>

#include "base/status_macros.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/model_ops_host.h"
#include "kernels/cuda/sampling.h"
#include "models/cuda_runner.h"
#include "runtime/sampling.h"

namespace kitty::runtime {
namespace {

namespace kc = kernels::cuda;

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}
#define SKIP_WITHOUT_GPU() \
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device"

// Runs the device sampler over `rows` (RowSampling plans) on `logits` [num_logit_rows][V];
// plan k samples logits row row_of[k].
std::vector<models::RowSample> RunDevice(const std::vector<float>& logits, int V,
                                         const std::vector<models::RowSampling>& plans,
                                         const std::vector<int>& row_of) {
  models::DeviceSamplingPlan plan = models::PlanDeviceSampling(plans);
  std::vector<kc::SampleRowParams>& ps = plan.params;
  std::vector<kc::PenaltyToken>& pens = plan.penalties;
  for (size_t k = 0; k < ps.size(); ++k) ps[k].row = row_of[k];
  if (pens.empty()) pens.push_back({});
  kc::DeviceBuffer d_logits, d_ps, d_pens, d_out;
  KITTY_CHECK_OK(d_logits.Allocate(logits.size() * 4, "logits"));
  KITTY_CHECK_OK(d_ps.Allocate(ps.size() * sizeof(ps[0]), "params"));
  KITTY_CHECK_OK(d_pens.Allocate(pens.size() * sizeof(pens[0]), "penalties"));
  KITTY_CHECK_OK(d_out.Allocate(ps.size() * sizeof(kc::SampleRowResult), "out"));
  KITTY_CHECK(cudaMemcpy(d_logits.get(), logits.data(), logits.size() * 4,
                         cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK(cudaMemcpy(d_ps.get(), ps.data(), ps.size() * sizeof(ps[0]),
                         cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK(cudaMemcpy(d_pens.get(), pens.data(), pens.size() * sizeof(pens[0]),
                         cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK(cudaMemset(d_out.get(), 0xff, d_out.bytes()) == cudaSuccess);  // poison
  KITTY_CHECK_OK(kc::SampleRows(d_logits.as<float>(), V, d_ps.as<kc::SampleRowParams>(),
                                static_cast<int>(ps.size()), d_pens.as<kc::PenaltyToken>(),
                                d_out.as<kc::SampleRowResult>(), nullptr));
  std::vector<kc::SampleRowResult> res(ps.size());
  KITTY_CHECK(cudaMemcpy(res.data(), d_out.get(), res.size() * sizeof(res[0]),
                         cudaMemcpyDeviceToHost) == cudaSuccess);
  KITTY_CHECK(cudaDeviceSynchronize() == cudaSuccess);
  std::vector<models::RowSample> out(res.size());
  for (size_t k = 0; k < res.size(); ++k) {
    out[k].token_id = res[k].token;
    out[k].logprob = res[k].logprob;
    for (int t = 0; t < res[k].num_top; ++t) {
      out[k].top.emplace_back(res[k].top_ids[t], res[k].top_logprobs[t]);
    }
  }
  return out;
}

std::vector<float> RandomRow(int V, std::mt19937_64& rng, float scale) {
  std::normal_distribution<float> n(0.0f, scale);
  std::vector<float> v(V);
  for (float& x : v) x = n(rng);
  return v;
}

TEST(DeviceSamplingTest, GreedyPenaltiesAndLogprobsMatchCpuSampler) {
  SKIP_WITHOUT_GPU();
  for (int V : {1000, 151936}) {
    std::mt19937_64 rng(V);
    const int kRows = 24;
    std::vector<float> logits;
    std::vector<SamplingParams> params(kRows);
    std::vector<std::vector<int32_t> > prompts(kRows), outputs(kRows);
    std::uniform_int_distribution<int32_t> tok(0, V - 1);
    for (int r = 0; r < kRows; ++r) {
      std::vector<float> row = RandomRow(V, rng, 3.0f);
      const int am = static_cast<int>(std::max_element(row.begin(), row.end()) - row.begin());
      if (r % 3 == 0) row[(am + 7) % V] = row[am];  // a tie: the lower index must win
      SamplingParams& p = params[r];
      p.temperature = 0.0f;
      p.logprobs = r % 2 == 0 ? 5 : 0;
      if (r % 4 >= 2) {
        p.repetition_penalty = r % 8 >= 4 ? 1.3f : 1.0f;
        p.presence_penalty = 0.5f;
        p.frequency_penalty = 1.5f;
        for (int i = 0; i < 40; ++i) prompts[r].push_back(tok(rng));
        for (int i = 0; i < 20; ++i) outputs[r].push_back(tok(rng));
        for (int i = 0; i < 3; ++i) outputs[r].push_back(am);  // penalise the argmax
      }
      logits.insert(logits.end(), row.begin(), row.end());
    }
    std::vector<models::RowSampling> plans;
    std::vector<int> row_of;
    for (int r = 0; r < kRows; ++r) {
      Sampler s(params[r], 1);
      plans.push_back(s.DeviceRow(prompts[r], outputs[r]));
      row_of.push_back(r);
    }
    const std::vector<models::RowSample> got = RunDevice(logits, V, plans, row_of);
    for (int r = 0; r < kRows; ++r) {
      Sampler s(params[r], 1);
      const SampleResult want = s.Sample(absl::MakeConstSpan(logits).subspan(size_t{1} * r * V, V),
                                         prompts[r], outputs[r]);
      EXPECT_EQ(got[r].token_id, want.token_id) << "V " << V << " row " << r;
      EXPECT_NEAR(got[r].logprob, want.logprob, 1e-4) << "V " << V << " row " << r;
      ASSERT_EQ(got[r].top.size(), want.top.size()) << "row " << r;
      for (size_t t = 0; t < want.top.size(); ++t) {
        EXPECT_EQ(got[r].top[t].first, want.top[t].token_id) << "row " << r << " top " << t;
        EXPECT_NEAR(got[r].top[t].second, want.top[t].logprob, 1e-4);
      }
    }
  }
}

// Exact distribution of runtime::Sampler's non-greedy draw (no penalties), in double.
std::vector<double> ExpectedDistribution(const std::vector<float>& logits,
                                         const SamplingParams& p) {
  const int V = static_cast<int>(logits.size());
  std::vector<float> x(logits);
  const float inv_t = 1.0f / p.temperature;
  for (float& l : x) l *= inv_t;
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return x[a] > x[b]; });
  int keep = p.top_k > 0 ? std::min(V, p.top_k) : V;
  std::vector<double> probs(keep);
  double z = 0;
  for (int i = 0; i < keep; ++i) z += probs[i] = std::exp(double{x[order[i]]} - x[order[0]]);
  for (double& q : probs) q /= z;
  if (p.min_p > 0) {
    int k2 = 0;
    while (k2 < keep && probs[k2] >= p.min_p * probs[0]) ++k2;
    keep = std::max(1, k2);
  }
  if (p.top_p < 1) {
    double cum = 0;
    int k2 = 0;
    while (k2 < keep) {
      cum += probs[k2++];
      if (cum >= p.top_p) break;
    }
    keep = std::max(1, k2);
  }
  double total = 0;
  for (int i = 0; i < keep; ++i) total += probs[i];
  std::vector<double> dist(V, 0.0);
  for (int i = 0; i < keep; ++i) dist[order[i]] = probs[i] / total;
  return dist;
}

TEST(DeviceSamplingTest, StratifiedDrawsMatchTheExactDistribution) {
  SKIP_WITHOUT_GPU();
  struct Case {
    int V;
    float t;
    int top_k;
    float top_p, min_p;
  };
  const std::vector<Case> cases = {
      {64, 0.7f, 0, 1.0f, 0.0f},        {64, 1.0f, 5, 1.0f, 0.0f},
      {64, 1.3f, 0, 0.8f, 0.0f},        {64, 1.0f, 0, 1.0f, 0.1f},
      {64, 0.9f, 20, 0.9f, 0.02f},      {151936, 1.0f, 50, 1.0f, 0.0f},
      {151936, 0.8f, 0, 0.9f, 0.0f},    {151936, 1.0f, 0, 1.0f, 0.05f},
      {151936, 1.0f, 40, 0.95f, 0.01f}, {3000, 1.0f, 1, 1.0f, 0.0f},
  };
  for (const Case& c : cases) {
    std::mt19937_64 rng(c.V + c.top_k);
    // Peaked rows (a few large logits) so top-p / min-p keep a small set.
    std::vector<float> row = RandomRow(c.V, rng, c.V > 1000 ? 2.0f : 1.5f);
    for (int i = 0; i < 30 && i < c.V; ++i) row[(i * 7919) % c.V] += 8.0f - 0.25f * i;
    SamplingParams p;
    p.temperature = c.t;
    p.top_k = c.top_k;
    p.top_p = c.top_p;
    p.min_p = c.min_p;
    const std::vector<double> want = ExpectedDistribution(row, p);
    const int N = c.V > 1000 ? 2048 : 8192;
    std::vector<models::RowSampling> plans(N);
    std::vector<int> row_of(N, 0);
    Sampler s(p, 1);
    for (int i = 0; i < N; ++i) {
      plans[i] = s.DeviceRow({}, {});
      plans[i].uniform = (static_cast<float>(i) + 0.5f) / static_cast<float>(N);
    }
    const std::vector<models::RowSample> got = RunDevice(row, c.V, plans, row_of);
    std::vector<int> count(c.V, 0);
    for (const models::RowSample& g : got) {
      ASSERT_GE(g.token_id, 0);
      ASSERT_LT(g.token_id, c.V);
      EXPECT_GT(want[g.token_id], 0.0) << "token " << g.token_id << " is outside the kept set";
      ++count[g.token_id];
    }
    int worst = 0;
    double worst_dev = 0;
    for (int j = 0; j < c.V; ++j) {
      const double dev = std::abs(count[j] - N * want[j]);
      if (dev > worst_dev) worst_dev = dev, worst = j;
    }
    EXPECT_LE(worst_dev, 2.0) << "V " << c.V << " T " << c.t << " top_k " << c.top_k << " top_p "
                              << c.top_p << " min_p " << c.min_p << ": token " << worst << " drawn "
                              << count[worst] << " times, expected " << N * want[worst];
  }
}

TEST(DeviceSamplingTest, UniformAtTheEdgesStaysInTheKeptSet) {
  SKIP_WITHOUT_GPU();
  const int V = 5000;
  std::mt19937_64 rng(3);
  const std::vector<float> row = RandomRow(V, rng, 2.0f);
  SamplingParams p;
  p.temperature = 1.0f;
  p.top_k = 10;
  const std::vector<double> want = ExpectedDistribution(row, p);
  std::vector<models::RowSampling> plans(3);
  Sampler s(p, 1);
  const float us[3] = {0.0f, 0.99999994f, 1.0f};
  for (int i = 0; i < 3; ++i) {
    plans[i] = s.DeviceRow({}, {});
    plans[i].uniform = us[i];
  }
  const std::vector<models::RowSample> got = RunDevice(row, V, plans, {0, 0, 0});
  for (int i = 0; i < 3; ++i) {
    ASSERT_GE(got[i].token_id, 0);
    ASSERT_LT(got[i].token_id, V);
    EXPECT_GT(want[got[i].token_id], 0.0) << "u = " << us[i];
  }
}

}  // namespace
}  // namespace kitty::runtime

#endif  // KITTY_HAVE_CUDA_RUNNER
