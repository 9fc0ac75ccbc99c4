// GPU tests of the engine's device-sampling path (label gpu; skipped without a CUDA device):
// the same engine on --device cuda with --sampling-device auto (tokens sampled on the GPU) and
// host (every logits row copied to the host, runtime::Sampler), on tiny-hf llama3 (bf16):
//   - greedy with logprobs and with repetition/presence/frequency penalties: identical tokens
//     and logprobs within 1e-4 (both read the same float32 logits);
//   - n = 3 seeded temperature sampling (the fork row is sampled on the host, the children on the
//     device): every output completes with max_tokens tokens in the vocabulary and the pages are
//     all returned.
#include <memory>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "runtime/engine.h"
#include "tests/runtime/engine_test_helpers.h"
#ifdef KITTY_HAVE_CUDA_RUNNER
#include "models/cuda_runner.h"
#endif

namespace kitty::runtime {
namespace {

using testing::RunAll;

bool HaveGpu() {
#ifdef KITTY_HAVE_CUDA_RUNNER
  return models::CudaDeviceAvailable();
#else
  return false;
#endif
}

std::shared_ptr<models::LoadedModel> Llama3() {
  static std::shared_ptr<models::LoadedModel> m =
      testing::LoadTestModel("tiny-hf/llama3", {.host_weights = false});
  return m;
}

std::unique_ptr<Engine> MakeEngine(const std::string& sampling_device) {
  EngineConfig c;
  c.device = "cuda";
  c.kv_cache_dtype = "kitty-pro";
  c.kv_cache_memory_bytes = int64_t{256} << 20;
  c.max_num_seqs = 16;
  c.sampling_device = sampling_device;
  absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Create(c, Llama3());
  KITTY_CHECK_OK(e.status());
  return *std::move(e);
}

std::vector<Request> GreedyRequests() {
  std::vector<Request> reqs;
  for (int i = 0; i < 6; ++i) {
    Request r;
    r.request_id = "r" + std::to_string(i);
    for (int t = 0; t < 20 + 37 * i; ++t)
      r.prompt_token_ids.push_back((t * 131 + i * 17) % 1000 + 3);
    r.params.temperature = 0;
    r.params.max_tokens = 24;
    r.params.ignore_eos = true;
    r.params.logprobs = i % 2 == 0 ? 3 : 0;
    if (i >= 3) {
      r.params.repetition_penalty = 1.3f;
      r.params.presence_penalty = 0.4f;
      r.params.frequency_penalty = 0.6f;
    }
    r.detokenize = false;
    reqs.push_back(std::move(r));
  }
  return reqs;
}

TEST(EngineDeviceSamplingTest, GreedyAndPenaltiesEqualHostSampling) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device (or a build without the CUDA runner)";
  const std::vector<Request> reqs = GreedyRequests();
  std::vector<RequestOutput> dev, host;
  {
    std::unique_ptr<Engine> e = MakeEngine("auto");
    dev = RunAll(*e, reqs, absl::Seconds(30));
    EXPECT_EQ(e->GetStats().pages_used, 0);
  }
  {
    std::unique_ptr<Engine> e = MakeEngine("host");
    host = RunAll(*e, reqs, absl::Seconds(30));
  }
  ASSERT_EQ(dev.size(), host.size());
  for (size_t i = 0; i < dev.size(); ++i) {
    ASSERT_EQ(dev[i].outputs.size(), 1u);
    ASSERT_EQ(host[i].outputs.size(), 1u);
    const CompletionDelta& d = dev[i].outputs[0];
    const CompletionDelta& h = host[i].outputs[0];
    EXPECT_EQ(d.token_ids, h.token_ids) << "request " << i;
    ASSERT_EQ(d.logprobs.size(), h.logprobs.size()) << "request " << i;
    for (size_t t = 0; t < d.logprobs.size(); ++t) {
      EXPECT_NEAR(d.logprobs[t].logprob, h.logprobs[t].logprob, 1e-4);
      ASSERT_EQ(d.logprobs[t].top.size(), h.logprobs[t].top.size());
      for (size_t k = 0; k < d.logprobs[t].top.size(); ++k) {
        EXPECT_EQ(d.logprobs[t].top[k].token_id, h.logprobs[t].top[k].token_id);
        EXPECT_NEAR(d.logprobs[t].top[k].logprob, h.logprobs[t].top[k].logprob, 1e-4);
      }
    }
  }
}

TEST(EngineDeviceSamplingTest, ForkedSeededSamplingCompletes) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device (or a build without the CUDA runner)";
  std::unique_ptr<Engine> e = MakeEngine("auto");
  Request r;
  r.request_id = "n3";
  for (int t = 0; t < 70; ++t) r.prompt_token_ids.push_back(t * 7 % 900 + 5);
  r.params.temperature = 0.8f;
  r.params.top_p = 0.9f;
  r.params.top_k = 50;
  r.params.seed = 7;
  r.params.n = 3;
  r.params.max_tokens = 40;
  r.params.ignore_eos = true;
  r.detokenize = false;
  Request r2 = r;
  r2.request_id = "n3-b";
  r2.params.seed = 8;
  const std::vector<RequestOutput> outs = RunAll(*e, {r, r2}, absl::Seconds(30));
  ASSERT_EQ(outs.size(), 2u);
  for (const RequestOutput& o : outs) {
    ASSERT_EQ(o.outputs.size(), 3u);
    for (const CompletionDelta& d : o.outputs) {
      EXPECT_EQ(d.token_ids.size(), 40u);
      EXPECT_EQ(d.finish_reason, "length");
      for (int32_t t : d.token_ids) {
        EXPECT_GE(t, 0);
        EXPECT_LT(t, Llama3()->config.vocab_size);
      }
    }
  }
  EXPECT_EQ(e->GetStats().pages_used, 0);
}

}  // namespace
}  // namespace kitty::runtime
