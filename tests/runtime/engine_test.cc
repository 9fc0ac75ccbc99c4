// Engine acceptance tests (issue 5) on stories260K: llama2.c run.c's greedy stories through the
// whole engine, batch invariance with and without preemption, prefix-cache hits in every Kitty
// mode, no page left in use, seeded sampling, stop strings across token boundaries, n > 1.
#include "runtime/engine.h"

#include <cmath>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>

#include "base/status_macros.h"
#include "base/testing/golden_files.h"
#include "base/testing/status_matchers.h"
#include "base/testing/test_data.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/tokenizer.h"
#include "runtime/offline.h"
#include "runtime/perplexity.h"
#include "tests/runtime/engine_test_helpers.h"

namespace kitty::runtime {
namespace {

using ::kitty::testing::ReadFileOrDie;
using ::kitty::testing::TestDataPath;
using testing::RunAll;

std::shared_ptr<models::LoadedModel> Stories() {
  static std::shared_ptr<models::LoadedModel> m = testing::LoadTestModel("stories260K/hf");
  return m;
}

// Prompts of mixed lengths cut from the TinyStories validation sample.
std::vector<std::vector<int32_t>> Prompts(int count, int min_len = 5, int spread = 290) {
  const std::vector<std::string> docs = SplitDocuments(
      ReadFileOrDie(TestDataPath("tinystories/valid_sample.txt")), "<|endoftext|>", count);
  std::vector<std::vector<int32_t>> out;
  for (int i = 0; i < count; ++i) {
    std::vector<int32_t> ids = Stories()->tokenizer->Encode(docs[i], true);
    const size_t len = min_len + (i * 37) % spread;
    if (ids.size() > len) ids.resize(len);
    out.push_back(std::move(ids));
  }
  return out;
}

RequestOutput RunOne(Engine& e, Request r) {
  absl::StatusOr<std::shared_ptr<RequestStream>> s = e.AddRequest(std::move(r));
  KITTY_CHECK_OK(s.status());
  return (*s)->WaitFinished();
}

Request Greedy(std::vector<int32_t> prompt, int max_tokens) {
  Request r;
  r.prompt_token_ids = std::move(prompt);
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

std::unique_ptr<Engine> MakeEngine(const std::string& mode, int64_t kv_bytes = 0,
                                   int max_batched = 2048, int max_seqs = 64) {
  EngineConfig c;
  c.kv_cache_dtype = mode;
  c.kv_cache_memory_bytes = kv_bytes > 0 ? kv_bytes : (int64_t{64} << 20);
  c.max_num_batched_tokens = max_batched;
  c.max_num_seqs = max_seqs;
  absl::StatusOr<std::unique_ptr<Engine>> e = Engine::Create(c, Stories());
  KITTY_CHECK_OK(e.status());
  return *std::move(e);
}

void ExpectBatchInvariant(Engine& e, const std::string& mode, bool expect_preemptions,
                          const std::vector<std::vector<int32_t>>& prompts) {
  const kernels::KvCacheSpec spec = MakeSpecForModel(Stories()->config, mode, -1, -1).value();
  std::vector<Request> reqs;
  for (const auto& p : prompts) reqs.push_back(Greedy(p, 24));
  const std::vector<RequestOutput> outs = RunAll(e, reqs);
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingParams p;
    p.temperature = 0;
    p.max_tokens = 24;
    p.ignore_eos = true;
    ASSERT_OK_AND_ASSIGN(GenerationResult alone, GenerateOffline(*Stories(), spec, prompts[i], p));
    ASSERT_EQ(outs[i].outputs.size(), 1u);
    EXPECT_EQ(outs[i].outputs[0].token_ids, alone.token_ids) << "request " << i;
    EXPECT_EQ(outs[i].outputs[0].finish_reason, "length");
  }
  const EngineStats s = e.GetStats();
  EXPECT_EQ(s.pages_used, 0);
  if (expect_preemptions) {
    EXPECT_GT(s.num_preemptions, 0);
  } else {
    EXPECT_EQ(s.num_preemptions, 0);
  }
}

// The peer's greedy output through the whole engine (scheduler, block manager, sampler,
// detokenizer), all five prompts in one batch: llama2.c run.c's ids and text (mode auto: float
// pages, as run.c).
TEST(EngineTest, ConcurrentGreedyMatchesRunC) {
  const std::vector<nlohmann::json> golden =
      ::kitty::testing::ReadJsonl(TestDataPath("stories260K/golden_greedy.jsonl"));
  ASSERT_FALSE(golden.empty());
  std::vector<Request> reqs;
  for (const nlohmann::json& g : golden) {
    reqs.push_back(Greedy(g["prompt_token_ids"].get<std::vector<int32_t>>(),
                          static_cast<int>(g["generated_token_ids"].size())));
  }
  std::unique_ptr<Engine> e = MakeEngine("auto");
  const std::vector<RequestOutput> outs = RunAll(*e, reqs);
  for (size_t i = 0; i < golden.size(); ++i) {
    const std::string prompt = golden[i]["prompt"].get<std::string>();
    SCOPED_TRACE(prompt);
    ASSERT_EQ(outs[i].outputs.size(), 1u);
    EXPECT_EQ(outs[i].outputs[0].token_ids,
              golden[i]["generated_token_ids"].get<std::vector<int32_t>>());
    EXPECT_EQ(prompt + outs[i].outputs[0].text, golden[i]["output_text"].get<std::string>());
  }
}

TEST(EngineTest, ConcurrentGreedyEqualsAlone) {
  std::unique_ptr<Engine> e = MakeEngine("auto");
  ExpectBatchInvariant(*e, "auto", /*expect_preemptions=*/false, Prompts(32));
}

TEST(EngineTest, ConcurrentGreedyEqualsAloneUnderPreemption) {
  // 4 MiB of KV (float32 on the CPU): 16 sequence slots but only a few pages, far less than
  // 32 prompts need at once, so sequences that grow past a page boundary preempt others.
  std::unique_ptr<Engine> e = MakeEngine("auto", int64_t{4} << 20, 512, 16);
  // Prompts of 260..279 tokens hold one sealed page after prefill and seal a second one while
  // decoding: the admitted sequences outgrow the pages and some must be preempted.
  const std::vector<std::vector<int32_t>> prompts = Prompts(32, 260, 20);
  ExpectBatchInvariant(*e, "auto", /*expect_preemptions=*/true, prompts);
  // vllm:prompt_tokens_total: every prompt once, its recomputation after a preemption not again.
  int64_t sum = 0;
  for (const auto& p : prompts) sum += static_cast<int64_t>(p.size());
  EXPECT_EQ(e->GetStats().prompt_tokens_total, sum);
}

TEST(EngineTest, SharedPrefixHitsInEveryMode) {
  const std::vector<int32_t> base = Prompts(40)[39];  // the longest kind of prompt
  std::vector<int32_t> long_prefix;
  for (const auto& p : Prompts(8)) long_prefix.insert(long_prefix.end(), p.begin(), p.end());
  long_prefix.resize(420);
  for (const std::string mode : {"auto", "kivi2", "kitty", "kitty-pro", "k4v2"}) {
    SCOPED_TRACE(mode);
    std::unique_ptr<Engine> e = MakeEngine(mode);
    // First request fills the cache; the next ones share its 420-token prefix.
    RunOne(*e, Greedy(long_prefix, 4));
    std::vector<Request> reqs;
    for (int i = 0; i < 6; ++i) {
      std::vector<int32_t> p = long_prefix;
      p.push_back(300 + i);
      p.push_back(301 + i);
      Request r = Greedy(p, 8);
      if (i == 1) r.params.stop_token_ids = {0};  // a mix of length and (maybe) stop
      reqs.push_back(r);
    }
    const std::vector<RequestOutput> outs = RunAll(*e, reqs);
    for (const RequestOutput& o : outs) {
      // 32 + 128*j <= 422 - 128  →  j = 2: 288 cached tokens.
      EXPECT_EQ(o.usage.cached_prompt_tokens, 288);
    }
    const EngineStats s = e->GetStats();
    EXPECT_EQ(s.prefix_cache_hit_tokens, 6 * 288);
    EXPECT_EQ(s.pages_used, 0);
  }
}

TEST(EngineTest, AbortedAndStoppedRequestsFreeEveryPage) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  const std::vector<std::vector<int32_t>> prompts = Prompts(12);
  std::vector<std::shared_ptr<RequestStream>> streams;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request r = Greedy(prompts[i], i % 3 == 0 ? 400 : 16);
    r.request_id = "r" + std::to_string(i);
    streams.push_back(*e->AddRequest(r));
  }
  for (size_t i = 0; i < prompts.size(); i += 3) e->Abort("r" + std::to_string(i));
  int aborted = 0;
  for (auto& s : streams) {
    const RequestOutput o = s->WaitFinished();
    aborted += o.outputs[0].finish_reason == "abort";
  }
  EXPECT_GT(aborted, 0);
  ASSERT_TRUE(e->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(e->GetStats().pages_used, 0);
  EXPECT_EQ(e->GetStats().num_running, 0);
}

TEST(EngineTest, SeededSamplingIsReproducibleAcrossBatches) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  const std::vector<std::vector<int32_t>> prompts = Prompts(10);
  Request r = Greedy(prompts[3], 20);
  r.params.temperature = 0.9f;
  r.params.top_p = 0.95f;
  r.params.seed = 1234;
  const RequestOutput alone = RunOne(*e, r);
  std::vector<Request> batch;
  for (size_t i = 0; i < prompts.size(); ++i) {
    Request x = Greedy(prompts[i], 20);
    x.params.temperature = 1.0f;
    batch.push_back(i == 7 ? r : x);
  }
  const std::vector<RequestOutput> outs = RunAll(*e, batch);
  EXPECT_EQ(outs[7].outputs[0].token_ids, alone.outputs[0].token_ids);
}

// vllm:prompt_tokens_total counts a prompt whole even when the prefix cache supplies part of it.
TEST(EngineTest, PromptTokensCountPrefixCacheHits) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  std::vector<int32_t> prompt;
  for (int i = 0; i < 400; ++i) prompt.push_back(3 + (i * 7) % 500);
  RunOne(*e, Greedy(prompt, 4));
  const RequestOutput again = RunOne(*e, Greedy(prompt, 4));
  EXPECT_EQ(again.usage.cached_prompt_tokens, 32 + 128);  // sink + 1 page: 400 - 160 >= 128
  EXPECT_EQ(e->GetStats().prompt_tokens_total, 800);
}

// Every streamed text delta is valid UTF-8 on its own: the stop-string hold-back cut deltas by
// bytes, inside multi-byte characters (audit repro: this prompt, stop " the", greedy).
TEST(EngineTest, HeldBackDeltasNeverSplitAUtf8Character) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  std::vector<int32_t> prompt;
  for (int j = 0; j < 50; ++j) prompt.push_back((j * 11) % 500 + 3);
  for (const std::vector<std::string>& stop :
       {std::vector<std::string>{" the"}, std::vector<std::string>{"zzzzzzzzzzzz"}}) {
    Request r = Greedy(prompt, 100);
    r.params.stop = stop;
    std::shared_ptr<RequestStream> s = *e->AddRequest(r);
    std::string all;
    bool finished = false;
    while (!finished) {
      std::optional<RequestOutput> out = s->Pop(absl::Seconds(30));
      ASSERT_TRUE(out.has_value());
      for (const CompletionDelta& d : out->outputs) {
        EXPECT_TRUE(models::IsValidUtf8(d.text)) << "after \"" << all << "\"";
        all += d.text;
      }
      finished = out->finished;
    }
  }
}

// 1 / T of a denormal temperature is inf: such requests are greedy (vLLM's epsilon), not noise.
TEST(EngineTest, TinyTemperaturesAreGreedy) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  const std::vector<int32_t> prompt = Prompts(1, 40)[0];
  const RequestOutput greedy = RunOne(*e, Greedy(prompt, 24));
  for (float t : {1e-40f, 1e-38f, 1e-20f, 1e-6f}) {
    Request r = Greedy(prompt, 24);
    r.params.temperature = t;
    r.params.logprobs = 2;
    const RequestOutput o = RunOne(*e, r);
    EXPECT_EQ(o.outputs[0].token_ids, greedy.outputs[0].token_ids) << "temperature " << t;
    for (const SampleResult& s : o.outputs[0].logprobs) EXPECT_TRUE(std::isfinite(s.logprob));
  }
}

TEST(EngineTest, StopStringAcrossTokensIsCaughtAndNotEmitted) {
  std::unique_ptr<Engine> e = MakeEngine("auto");
  const std::vector<int32_t> prompt = Stories()->tokenizer->Encode("Once upon a time", true);
  const RequestOutput full = RunOne(*e, Greedy(prompt, 40));
  const std::string text = full.outputs[0].text;
  // Find a stop string that spans two tokens: the end of token k's text + the start of k+1's.
  const auto& ids = full.outputs[0].token_ids;
  std::string stop;
  size_t expect_len = 0;
  for (size_t k = 3; k + 1 < ids.size() && stop.empty(); ++k) {
    const std::string a = Stories()->tokenizer->Decode({ids.data(), k + 1}, true);
    const std::string b = Stories()->tokenizer->Decode({ids.data(), k + 2}, true);
    if (a.size() >= 2 && b.size() >= a.size() + 2 &&
        text.find(a.substr(a.size() - 2)) >= a.size() - 2) {
      stop = a.substr(a.size() - 2) + b.substr(a.size(), 2);
      expect_len = a.size() - 2;
    }
  }
  ASSERT_FALSE(stop.empty());
  Request r = Greedy(prompt, 40);
  r.params.stop = {stop};
  const RequestOutput o = RunOne(*e, r);
  EXPECT_EQ(o.outputs[0].finish_reason, "stop");
  EXPECT_EQ(o.outputs[0].text, text.substr(0, expect_len));
  EXPECT_EQ(o.outputs[0].text.find(stop), std::string::npos);
}

TEST(EngineTest, ParallelSamplingReturnsIndexedOutputs) {
  std::unique_ptr<Engine> e = MakeEngine("kitty-pro");
  Request r = Greedy(Prompts(5)[4], 12);
  r.params.n = 4;
  r.params.temperature = 1.0f;
  r.params.seed = 7;
  const RequestOutput o = RunOne(*e, r);
  ASSERT_EQ(o.outputs.size(), 4u);
  std::set<std::vector<int32_t>> distinct;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(o.outputs[i].index, i);
    EXPECT_EQ(o.outputs[i].token_ids.size(), 12u);
    distinct.insert(o.outputs[i].token_ids);
  }
  EXPECT_GT(distinct.size(), 1u);
  EXPECT_EQ(o.usage.completion_tokens, 48);
  EXPECT_TRUE(e->WaitIdle(absl::Seconds(5)));
  EXPECT_EQ(e->GetStats().pages_used, 0);
}

TEST(EngineTest, BadRequestsAreRejectedWithTheField) {
  std::unique_ptr<Engine> e = MakeEngine("auto");
  Request empty;
  EXPECT_THAT(e->AddRequest(empty).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("prompt")));
  Request bad_id = Greedy({1, 99999}, 4);
  EXPECT_THAT(e->AddRequest(bad_id).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("prompt_token_ids[1]")));
  Request too_long = Greedy(std::vector<int32_t>(600, 5), 4);
  EXPECT_THAT(e->AddRequest(too_long).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("context")));
  Request bad_p = Greedy({1, 2, 3}, 4);
  bad_p.params.top_p = 0;
  EXPECT_THAT(e->AddRequest(bad_p).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("top_p")));
  Request many_ids = Greedy({1, 2, 3}, 4);
  many_ids.params.stop_token_ids.assign(kMaxStopTokenIds + 1, 3);
  EXPECT_THAT(e->AddRequest(many_ids).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("stop_token_ids")));
  Request long_stop = Greedy({1, 2, 3}, 4);
  long_stop.params.stop = {std::string(kMaxStopStringBytes + 1, 'a')};
  EXPECT_THAT(e->AddRequest(long_stop).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("sampling_params.stop")));
  Request many_stops = Greedy({1, 2, 3}, 4);
  many_stops.params.stop.assign(kMaxStopStrings + 1, "ab");
  EXPECT_THAT(e->AddRequest(many_stops).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("sampling_params.stop")));
  Request forged = Greedy({1, 2, 3}, 4);
  forged.request_id = "a\n2026-12-07T20:00:00.000 info kitty-serve stopped";
  EXPECT_THAT(e->AddRequest(forged).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("request_id: control character")));
  Request huge_id = Greedy({1, 2, 3}, 4);
  huge_id.request_id = std::string(257, 'x');
  EXPECT_THAT(e->AddRequest(huge_id).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("request_id: 257 bytes")));
  e->StartDrain();
  EXPECT_THAT(e->AddRequest(Greedy({1, 2}, 2)).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kUnavailable, ::testing::_));
}

// A cache that holds less than the model's context (512) for one sequence caps max_model_len,
// so a request asking for more than fits ends with "length" instead of being aborted, and a
// request behind it is not the one that pays (it was aborted in its place before).
TEST(EngineTest, ContextIsCappedByTheKvCacheSoNoRequestIsAborted) {
  std::unique_ptr<Engine> e = MakeEngine("auto", 800'000, 512, 2);
  const int32_t len = e->cache_info().max_model_len;
  ASSERT_LT(len, Stories()->config.max_position_embeddings);
  ASSERT_GT(len, 320);
  for (int trial = 0; trial < 3; ++trial) {
    Request big = Greedy(std::vector<int32_t>(300, 7), 1000);
    big.request_id = "big" + std::to_string(trial);
    Request small = Greedy(std::vector<int32_t>(300, 8), 20);
    small.request_id = "small" + std::to_string(trial);
    std::shared_ptr<RequestStream> a = *e->AddRequest(big);
    std::shared_ptr<RequestStream> b = *e->AddRequest(small);
    const RequestOutput oa = a->WaitFinished(), ob = b->WaitFinished();
    EXPECT_EQ(oa.outputs[0].finish_reason, "length");
    EXPECT_EQ(oa.usage.completion_tokens, len - 300);
    EXPECT_EQ(ob.outputs[0].finish_reason, "length");
    EXPECT_EQ(ob.usage.completion_tokens, 20);
  }
  ASSERT_TRUE(e->WaitIdle(absl::Seconds(10)));
  EXPECT_EQ(e->GetStats().pages_used, 0);
  EXPECT_THAT(e->AddRequest(Greedy(std::vector<int32_t>(len, 5), 4)).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("--kv-cache-memory")));
}

TEST(EngineTest, MaxModelLenBeyondTheKvCacheIsRejected) {
  EngineConfig c;
  c.kv_cache_dtype = "auto";
  c.kv_cache_memory_bytes = 800'000;
  c.max_num_seqs = 2;
  c.max_model_len = 500;
  EXPECT_THAT(Engine::Create(c, Stories()).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("--max-model-len 500 exceeds")));
}

TEST(EngineTest, ImpossibleSizesAreRejectedNamingTheFlag) {
  const std::vector<std::pair<std::function<void(EngineConfig&)>, std::string>> cases = {
      {[](EngineConfig& c) { c.max_num_seqs = 0; }, "--max-num-seqs"},
      {[](EngineConfig& c) { c.max_num_batched_tokens = 0; }, "--max-num-batched-tokens"},
      {[](EngineConfig& c) { c.max_num_batched_tokens = -1; }, "--max-num-batched-tokens"},
      {[](EngineConfig& c) { c.kv_cache_memory_bytes = -100; }, "--kv-cache-memory"},
      {[](EngineConfig& c) { c.max_model_len = -5; }, "--max-model-len"},
      {[](EngineConfig& c) { c.max_queued_requests = -300; }, "--max-queued-requests"},
      {[](EngineConfig& c) { c.gpu_memory_utilization = 0; }, "--gpu-memory-utilization"},
      {[](EngineConfig& c) { c.gpu_memory_utilization = std::nan(""); },
       "--gpu-memory-utilization"},
  };
  for (const auto& [set, flag] : cases) {
    EngineConfig c;
    c.kv_cache_memory_bytes = int64_t{64} << 20;
    set(c);
    EXPECT_THAT(
        Engine::Create(c, Stories()).status(),
        ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr(flag)));
  }
}

TEST(EngineTest, NegativeCudaGraphMaxBatchIsRejected) {
  EngineConfig c;
  c.kv_cache_memory_bytes = int64_t{64} << 20;
  c.cuda_graph_max_batch = -1;
  EXPECT_THAT(Engine::Create(c, Stories()).status(),
              ::kitty::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                         ::testing::HasSubstr("--cuda-graph-max-batch")));
}

}  // namespace
}  // namespace kitty::runtime
