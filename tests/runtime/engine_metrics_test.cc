#include "runtime/engine_metrics.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

CacheConfigLabels Labels() {
  CacheConfigLabels l;
  l.cache_dtype = "kitty-pro";
  l.block_size = 128;
  l.num_gpu_blocks = 10;
  return l;
}

TEST(EngineMetricsTest, EveryContractSeriesExistsBeforeTheFirstRequest) {
  MetricsRegistry r;
  EngineMetrics m(&r, "tiny", 512, Labels());
  const std::string text = r.Serialize();
  for (const char* reason : {"stop", "length", "abort"}) {
    EXPECT_THAT(text, HasSubstr(std::string("vllm:request_success_total{model_name=\"tiny\","
                                            "finished_reason=\"") +
                                reason + "\"} 0\n"));
  }
  EXPECT_THAT(text, HasSubstr("vllm:cache_config_info{model_name=\"tiny\",block_size=\"128\","
                              "cache_dtype=\"kitty-pro\""));
  EXPECT_THAT(text, HasSubstr("kitty_kv_cache_bytes{model_name=\"tiny\",kind=\"v_page\"} 0\n"));
  // vLLM's 1-2-5 token buckets up to max_model_len.
  EXPECT_THAT(text,
              HasSubstr("vllm:request_prompt_tokens_bucket{model_name=\"tiny\",le=\"500.0\"}"));
  EXPECT_THAT(text, Not(HasSubstr("le=\"1000.0\"")));
  EXPECT_THAT(text, HasSubstr("vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\","
                              "le=\"2560.0\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vllm:e2e_request_latency_seconds_bucket{model_name=\"tiny\","
                              "le=\"7680.0\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vllm:inter_token_latency_seconds_bucket{model_name=\"tiny\","
                              "le=\"80.0\"} 0\n"));
}

TEST(EngineMetricsTest, UpdateCopiesTheSnapshotAndCountersNeverGoBack) {
  MetricsRegistry r;
  EngineMetrics m(&r, "tiny", 512, Labels());
  EngineStats s;
  s.num_running = 3;
  s.num_waiting = 1;
  s.kv_cache_usage = 0.25;
  s.prompt_tokens_total = 100;
  s.generation_tokens_total = 40;
  s.prefix_cache_hit_tokens = 128;
  s.pages_used = 6;
  s.pages_free = 10;
  s.pages_cached = 2;
  s.k_pages_used = 4;
  s.k_pages_free = 5;
  s.k_pages_cached = 2;
  s.v_pages_used = 2;
  s.v_pages_free = 5;
  s.v_pages_cached = 0;
  s.k_page_bytes = 4096;
  CacheInfo c;
  c.capacity_tokens = 9999;
  m.Update(s, c);
  std::string text = r.Serialize();
  EXPECT_THAT(text, HasSubstr("vllm:num_requests_running{model_name=\"tiny\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("vllm:kv_cache_usage_perc{model_name=\"tiny\"} 0.25\n"));
  EXPECT_THAT(text, HasSubstr("vllm:prompt_tokens_total{model_name=\"tiny\"} 100\n"));
  EXPECT_THAT(text, HasSubstr("vllm:prefix_cache_hits_total{model_name=\"tiny\"} 128\n"));
  EXPECT_THAT(text, HasSubstr("kitty_kv_cache_bytes{model_name=\"tiny\",kind=\"k_page\"} 4096\n"));
  EXPECT_THAT(text, HasSubstr("kitty_kv_capacity_tokens{model_name=\"tiny\"} 9999\n"));
  EXPECT_THAT(text, HasSubstr("pool=\"k\",state=\"used\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("pool=\"v\",state=\"used\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("pool=\"k\",state=\"cached\"} 2\n"));

  s.prompt_tokens_total = 50;  // a snapshot may never lower a counter
  m.Update(s, c);
  EXPECT_THAT(r.Serialize(), HasSubstr("vllm:prompt_tokens_total{model_name=\"tiny\"} 100\n"));
}

TEST(EngineMetricsTest, ObserverEventsFeedHistogramsAndReasons) {
  MetricsRegistry r;
  EngineMetrics m(&r, "tiny", 512, Labels());
  m.OnFirstToken(0.03);
  m.OnInterTokenLatency(0.02);
  FinishedRequestInfo info;
  info.finish_reason = "stop";
  info.prompt_tokens = 7;
  info.generation_tokens = 3;
  info.e2e_s = 0.4;
  m.OnRequestFinished(info);
  info.finish_reason = "abort";
  m.OnRequestFinished(info);
  const std::string text = r.Serialize();
  EXPECT_THAT(text, HasSubstr("vllm:time_to_first_token_seconds_count{model_name=\"tiny\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\","
                              "le=\"0.04\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vllm:time_to_first_token_seconds_bucket{model_name=\"tiny\","
                              "le=\"0.02\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("vllm:inter_token_latency_seconds_count{model_name=\"tiny\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("finished_reason=\"stop\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("finished_reason=\"abort\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("vllm:request_prompt_tokens_sum{model_name=\"tiny\"} 14\n"));
  EXPECT_THAT(text, HasSubstr("vllm:e2e_request_latency_seconds_bucket{model_name=\"tiny\","
                              "le=\"0.5\"} 2\n"));
}

}  // namespace
}  // namespace kitty::runtime
