#include "runtime/metrics.h"

#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace kitty::runtime {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsFormatTest, ValuesUseShortestRoundTripAndGoSpecials) {
  using metrics_internal::FormatValue;
  EXPECT_EQ(FormatValue(0), "0");
  EXPECT_EQ(FormatValue(42), "42");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(-2.5), "-2.5");
  EXPECT_EQ(FormatValue(1e300), "1e+300");
  EXPECT_EQ(FormatValue(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(FormatValue(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
}

TEST(MetricsFormatTest, BucketBoundsSpellIntegersLikePrometheusClient) {
  using metrics_internal::FormatBucketBound;
  EXPECT_EQ(FormatBucketBound(1), "1.0");
  EXPECT_EQ(FormatBucketBound(2560), "2560.0");
  EXPECT_EQ(FormatBucketBound(0.001), "0.001");
  EXPECT_EQ(FormatBucketBound(7.5), "7.5");
}

TEST(MetricsFormatTest, EscapesLabelValuesAndHelp) {
  EXPECT_EQ(metrics_internal::EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
  EXPECT_EQ(metrics_internal::EscapeHelp("a\"b\\c\nd"), "a\"b\\\\c\\nd");
}

TEST(MetricsFormatTest, ValidatesNames) {
  using metrics_internal::IsValidLabelName;
  using metrics_internal::IsValidMetricName;
  EXPECT_TRUE(IsValidMetricName("vllm:num_requests_running"));
  EXPECT_TRUE(IsValidMetricName("kitty_kv_pages"));
  EXPECT_FALSE(IsValidMetricName("1abc"));
  EXPECT_FALSE(IsValidMetricName("a-b"));
  EXPECT_FALSE(IsValidMetricName(""));
  EXPECT_TRUE(IsValidLabelName("model_name"));
  EXPECT_FALSE(IsValidLabelName("__reserved"));
  EXPECT_FALSE(IsValidLabelName("a:b"));
}

TEST(OneTwoFiveBucketsTest, MatchesVllm) {
  EXPECT_EQ(OneTwoFiveBuckets(100), (std::vector<double>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(OneTwoFiveBuckets(512), (std::vector<double>{1, 2, 5, 10, 20, 50, 100, 200, 500}));
  EXPECT_TRUE(OneTwoFiveBuckets(0.5).empty());
}

TEST(CounterTest, OnlyGoesUp) {
  Counter c;
  c.Increment();
  c.Increment(2.5);
  c.Increment(-10);  // ignored
  EXPECT_DOUBLE_EQ(c.value(), 3.5);
  c.IncrementTo(10);
  EXPECT_DOUBLE_EQ(c.value(), 10);
  c.IncrementTo(4);  // never lowers
  EXPECT_DOUBLE_EQ(c.value(), 10);
}

TEST(GaugeTest, SetsAndMoves) {
  Gauge g;
  g.Set(5);
  g.Increment(-2);
  EXPECT_DOUBLE_EQ(g.value(), 3);
}

TEST(HistogramTest, BucketsAreCumulativeWithLeSemantics) {
  Histogram h({1, 2, 5});
  for (double v : {0.5, 1.0, 1.5, 2.0, 4.0, 100.0}) h.Observe(v);
  Histogram::Snapshot s = h.Collect();
  // le=1: 0.5, 1.0; le=2: + 1.5, 2.0; le=5: + 4.0; +Inf: + 100.
  EXPECT_EQ(s.cumulative, (std::vector<uint64_t>{2, 4, 5, 6}));
  EXPECT_EQ(s.count, 6u);
  EXPECT_DOUBLE_EQ(s.sum, 109.0);
}

TEST(HistogramTest, ConcurrentObservationsAreAllCounted) {
  Histogram h({0.5});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 10000; ++i) h.Observe(i % 2);
    });
  }
  for (auto& t : threads) t.join();
  Histogram::Snapshot s = h.Collect();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.cumulative[0], 20000u);
  EXPECT_DOUBLE_EQ(s.sum, 20000);
}

TEST(MetricsRegistryTest, SameNameAndLabelsReturnSameSeries) {
  MetricsRegistry r;
  Counter* a = r.AddCounter("x_total", "X.", {{"k", "1"}});
  Counter* b = r.AddCounter("x_total", "X.", {{"k", "1"}});
  Counter* c = r.AddCounter("x_total", "X.", {{"k", "2"}});
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(MetricsRegistryTest, SerializesTextFormat004) {
  MetricsRegistry r;
  r.AddGauge("vllm:num_requests_running", "Number of requests in model execution batches.",
             {{"model_name", "m"}})
      ->Set(3);
  r.AddCounter("vllm:request_success_total", "Count of successfully processed requests.",
               {{"model_name", "m"}, {"finished_reason", "stop"}})
      ->Increment(2);
  r.AddCounter("vllm:request_success_total", "Count of successfully processed requests.",
               {{"model_name", "m"}, {"finished_reason", "length"}});
  Histogram* h = r.AddHistogram("vllm:time_to_first_token_seconds", "TTFT.", {{"model_name", "m"}},
                                {0.1, 1.0});
  h->Observe(0.0625);
  h->Observe(0.5);
  h->Observe(3);
  r.AddGauge("plain", "Line one\nline two \\ end", {})->Set(0.25);

  EXPECT_EQ(r.Serialize(),
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            "vllm:num_requests_running{model_name=\"m\"} 3\n"
            "# HELP vllm:request_success_total Count of successfully processed requests.\n"
            "# TYPE vllm:request_success_total counter\n"
            "vllm:request_success_total{model_name=\"m\",finished_reason=\"stop\"} 2\n"
            "vllm:request_success_total{model_name=\"m\",finished_reason=\"length\"} 0\n"
            "# HELP vllm:time_to_first_token_seconds TTFT.\n"
            "# TYPE vllm:time_to_first_token_seconds histogram\n"
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"0.1\"} 1\n"
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"1.0\"} 2\n"
            "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",le=\"+Inf\"} 3\n"
            "vllm:time_to_first_token_seconds_sum{model_name=\"m\"} 3.5625\n"
            "vllm:time_to_first_token_seconds_count{model_name=\"m\"} 3\n"
            "# HELP plain Line one\\nline two \\\\ end\n"
            "# TYPE plain gauge\n"
            "plain 0.25\n");
}

TEST(MetricsRegistryTest, EscapesLabelValuesInOutput) {
  MetricsRegistry r;
  r.AddGauge("g", "G.", {{"path", "a\"b\nc\\"}})->Set(1);
  EXPECT_THAT(r.Serialize(), HasSubstr("g{path=\"a\\\"b\\nc\\\\\"} 1\n"));
}

TEST(MetricsRegistryTest, CollectHooksRunBeforeEachSerialize) {
  MetricsRegistry r;
  Gauge* g = r.AddGauge("g", "G.", {});
  int calls = 0;
  r.AddCollectHook([&] { g->Set(++calls); });
  EXPECT_THAT(r.Serialize(), HasSubstr("g 1\n"));
  EXPECT_THAT(r.Serialize(), HasSubstr("g 2\n"));
}

TEST(MetricsRegistryTest, HistogramWithoutObservationsHasZeroBuckets) {
  MetricsRegistry r;
  r.AddHistogram("h", "H.", {}, {1});
  const std::string text = r.Serialize();
  EXPECT_THAT(text, HasSubstr("h_bucket{le=\"1.0\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("h_bucket{le=\"+Inf\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("h_sum 0\n"));
  EXPECT_THAT(text, HasSubstr("h_count 0\n"));
  EXPECT_THAT(text, Not(HasSubstr("{}")));
}

TEST(MetricsRegistryDeathTest, RejectsProgrammingErrors) {
  MetricsRegistry r;
  EXPECT_DEATH(r.AddCounter("no_suffix", "C.", {}), "_total");
  EXPECT_DEATH(r.AddGauge("bad-name", "G.", {}), "bad metric name");
  EXPECT_DEATH(r.AddHistogram("h", "H.", {{"le", "1"}}, {1}), "le");
  r.AddCounter("twice_total", "C.", {});
  EXPECT_DEATH(r.AddGauge("twice_total", "G.", {}), "another type");
}

}  // namespace
}  // namespace kitty::runtime
