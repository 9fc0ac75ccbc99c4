// The engine's device-sampling path (ModelRunner::ForwardAndSample) on the CPU, so that its
// row planning runs in every CI build: a runner that wraps the CPU runner and "samples on the
// device" in plain C++ stands in for the CUDA runner (whose kernel is tested against
// runtime::Sampler in sampling_gpu_test.cc).
//   - greedy + penalties + logprobs through the device path equal the host path (the stand-in
//     applies runtime::Sampler to each planned row with the parameters and penalty tokens of
//     the plan, so a wrong plan or a wrong row mapping changes tokens);
//   - prefill-chunk rows are planned kSkip, the first sample of an n > 1 request kHost, all
//     others kDevice;
//   - seeded temperature draws come from each sequence's own generator: a seeded request gives
//     the same tokens alone and in a batch (the stand-in's token is a function of the uniform).
#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "models/model_runner.h"
#include "runtime/engine.h"
#include "tests/runtime/engine_test_helpers.h"

namespace kitty::runtime {
namespace {

using testing::RunAll;

std::shared_ptr<models::LoadedModel> Stories() {
  static std::shared_ptr<models::LoadedModel> m = testing::LoadTestModel("stories260K/hf");
  return m;
}

struct PlanCounts {
  int skip = 0, host = 0, device = 0;
};

// The CPU runner plus a host implementation of device sampling.
class StandInDeviceRunner : public models::ModelRunner {
 public:
  StandInDeviceRunner(const models::LoadedModel& m, PlanCounts* counts)
      : inner_(models::MakeCpuRunner(m)), vocab_(m.config.vocab_size), counts_(counts) {}
  std::string device_name() const override { return "stand-in device"; }
  kernels::DType kv_dtype() const override { return inner_->kv_dtype(); }
  int64_t AvailableKvBytes(double u, int t) const override {
    return inner_->AvailableKvBytes(u, t);
  }
  absl::Status AllocateKv(const kernels::KvCacheSpec& spec,
                          const models::KvPoolSizes& sizes) override {
    return inner_->AllocateKv(spec, sizes);
  }
  int64_t kv_bytes() const override { return inner_->kv_bytes(); }
  absl::Status Forward(absl::Span<const models::SequenceStep> batch,
                       std::vector<float>* logits) override {
    return inner_->Forward(batch, logits);
  }
  void CopySinkBlock(int32_t src, int32_t dst) override { inner_->CopySinkBlock(src, dst); }
  void CopyTailSlot(int32_t src, int32_t dst) override { inner_->CopyTailSlot(src, dst); }

  bool supports_device_sampling() const override { return true; }
  absl::Status ForwardAndSample(absl::Span<const models::SequenceStep> batch,
                                absl::Span<const models::RowSampling> rows,
                                std::vector<models::RowSample>* samples,
                                std::vector<float>* host_logits) override {
    std::vector<float> all;
    RETURN_IF_ERROR(inner_->Forward(batch, &all));
    const size_t V = vocab_;
    if (all.size() != rows.size() * V) return absl::InternalError("row plans != logits rows");
    host_logits->clear();
    samples->assign(rows.size(), {});
    for (size_t r = 0; r < rows.size(); ++r) {
      absl::Span<const float> row = absl::MakeConstSpan(all).subspan(r * V, V);
      const models::RowSampling& p = rows[r];
      if (p.where == models::RowSampling::Where::kSkip) {
        ++counts_->skip;
      } else if (p.where == models::RowSampling::Where::kHost) {
        ++counts_->host;
        host_logits->insert(host_logits->end(), row.begin(), row.end());
      } else {
        ++counts_->device;
        (*samples)[r] = SampleLikeTheDevice(row, p);
      }
    }
    return absl::OkStatus();
  }

 private:
  // Greedy rows: runtime::Sampler with the plan's parameters, the penalty tokens turned back
  // into a prompt (count 0) and an output (count times). Temperature rows: the token is a
  // function of the plan's uniform alone.
  models::RowSample SampleLikeTheDevice(absl::Span<const float> row,
                                        const models::RowSampling& p) const {
    models::RowSample out;
    if (p.temperature > 0.0f) {
      out.token_id = std::min<int32_t>(vocab_ - 1, static_cast<int32_t>(p.uniform * vocab_));
      return out;
    }
    SamplingParams sp;
    sp.temperature = 0.0f;
    sp.repetition_penalty = p.repetition_penalty;
    sp.presence_penalty = p.presence_penalty;
    sp.frequency_penalty = p.frequency_penalty;
    sp.logprobs = p.num_logprobs;
    std::vector<int32_t> prompt, output;
    for (const auto& [tok, cnt] : p.penalty_tokens) {
      if (cnt == 0) prompt.push_back(tok);
      for (int i = 0; i < cnt; ++i) output.push_back(tok);
    }
    Sampler s(sp, 0);
    const SampleResult r = s.Sample(row, prompt, output);
    out.token_id = r.token_id;
    out.logprob = r.logprob;
    for (const TokenLogprob& t : r.top) out.top.emplace_back(t.token_id, t.logprob);
    return out;
  }

  std::unique_ptr<models::ModelRunner> inner_;
  int32_t vocab_;
  PlanCounts* counts_;
};

std::unique_ptr<Engine> MakeEngine(const std::string& sampling_device, PlanCounts* counts,
                                   int max_batched_tokens = 2048) {
  EngineConfig c;
  // auto: logits must not depend on how the scheduler happened to chunk the prompts (with
  // quantized pages they do, since a later chunk attends to the sealed pages of earlier ones),
  // because the two engines compared below are not scheduled in lockstep.
  c.kv_cache_dtype = "auto";
  c.kv_cache_memory_bytes = int64_t{64} << 20;
  c.max_num_batched_tokens = max_batched_tokens;
  c.max_num_seqs = 16;
  c.sampling_device = sampling_device;
  c.make_runner =
      [counts](
          const models::LoadedModel& m) -> absl::StatusOr<std::unique_ptr<models::ModelRunner>> {
    return std::make_unique<StandInDeviceRunner>(m, counts);
  };
  absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Create(c, Stories());
  KITTY_CHECK_OK(e.status());
  return *std::move(e);
}

Request Make(const std::string& id, int prompt_len, int max_tokens) {
  Request r;
  r.request_id = id;
  for (int t = 0; t < prompt_len; ++t)
    r.prompt_token_ids.push_back((t * 31 + prompt_len) % 500 + 3);
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.params.temperature = 0;
  r.detokenize = false;
  return r;
}

TEST(EngineDeviceSamplingTest, GreedyPenaltiesAndLogprobsEqualTheHostPath) {
  std::vector<Request> reqs;
  for (int i = 0; i < 6; ++i) {
    Request r = Make("r" + std::to_string(i), 10 + 60 * i, 20);
    r.params.logprobs = i % 2 == 0 ? 3 : 0;
    if (i >= 2) {
      r.params.repetition_penalty = i % 2 ? 1.4f : 1.0f;
      r.params.presence_penalty = 0.5f;
      r.params.frequency_penalty = 0.8f;
    }
    reqs.push_back(r);
  }
  PlanCounts dev_counts, host_counts;
  // 96-token steps: the longer prompts are chunked, so some steps carry kSkip rows.
  std::unique_ptr<Engine> dev = MakeEngine("auto", &dev_counts, 96);
  std::unique_ptr<Engine> host = MakeEngine("host", &host_counts, 96);
  const std::vector<RequestOutput> d = RunAll(*dev, reqs);
  const std::vector<RequestOutput> h = RunAll(*host, reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_EQ(d[i].outputs.size(), 1u);
    EXPECT_EQ(d[i].outputs[0].token_ids, h[i].outputs[0].token_ids) << "request " << i;
    ASSERT_EQ(d[i].outputs[0].logprobs.size(), h[i].outputs[0].logprobs.size());
    for (size_t t = 0; t < d[i].outputs[0].logprobs.size(); ++t) {
      const SampleResult& a = d[i].outputs[0].logprobs[t];
      const SampleResult& b = h[i].outputs[0].logprobs[t];
      EXPECT_EQ(a.token_id, b.token_id);
      EXPECT_NEAR(a.logprob, b.logprob, 1e-4);  // summation order may differ by chunking
      ASSERT_EQ(a.top.size(), b.top.size());
      for (size_t k = 0; k < a.top.size(); ++k) EXPECT_EQ(a.top[k].token_id, b.top[k].token_id);
    }
  }
  EXPECT_EQ(dev_counts.device, 6 * 20);  // every generated token on the "device"
  EXPECT_EQ(dev_counts.host, 0);
  EXPECT_GT(dev_counts.skip, 0);                                           // mid-prompt chunks
  EXPECT_EQ(host_counts.device + host_counts.host + host_counts.skip, 0);  // Forward only
  EXPECT_EQ(dev->GetStats().pages_used, 0);
}

TEST(EngineDeviceSamplingTest, ForksSampleTheirFirstTokenOnTheHostAndSeedsHoldInABatch) {
  Request seeded = Make("seeded", 40, 16);
  seeded.params.temperature = 0.9f;
  seeded.params.seed = 1234;
  seeded.params.n = 3;
  PlanCounts alone_counts, batch_counts;
  std::unique_ptr<Engine> alone = MakeEngine("auto", &alone_counts);
  const RequestOutput a = RunAll(*alone, {seeded})[0];
  EXPECT_EQ(alone_counts.host, 1);             // the fork row
  EXPECT_EQ(alone_counts.device, 3 * 16 - 3);  // the rest
  std::vector<Request> reqs = {Make("x", 70, 12), seeded, Make("y", 150, 9)};
  reqs[0].params.temperature = 1.0f;
  std::unique_ptr<Engine> batch = MakeEngine("auto", &batch_counts);
  const std::vector<RequestOutput> b = RunAll(*batch, reqs);
  ASSERT_EQ(a.outputs.size(), 3u);
  ASSERT_EQ(b[1].outputs.size(), 3u);
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(a.outputs[k].token_ids.size(), 16u);
    EXPECT_EQ(a.outputs[k].token_ids, b[1].outputs[k].token_ids) << "output " << k;
  }
  EXPECT_NE(a.outputs[1].token_ids, a.outputs[2].token_ids);  // children have their own seeds
  EXPECT_EQ(batch->GetStats().pages_used, 0);
}

}  // namespace
}  // namespace kitty::runtime
