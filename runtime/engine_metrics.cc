#include "runtime/engine_metrics.h"

#include <algorithm>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace kitty::runtime {
namespace {

// vLLM v1 (vllm/v1/metrics/loggers.py) buckets, so dashboards and SLO rules carry over.
const std::vector<double>& TtftBuckets() {
  static const std::vector<double> b = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                        0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                        20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
  return b;
}
const std::vector<double>& InterTokenBuckets() {
  static const std::vector<double> b = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                        0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
  return b;
}
const std::vector<double>& RequestLatencyBuckets() {
  static const std::vector<double> b = {0.3,  0.5,   0.8,   1.0,   1.5,   2.0,    2.5,
                                        5.0,  10.0,  15.0,  20.0,  30.0,  40.0,   50.0,
                                        60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};
  return b;
}

struct PoolPages {
  const char* pool;
  double used, free, cached;
};

std::vector<PoolPages> PagesByPool(const EngineStats& s) {
  return {{"k", double(s.k_pages_used), double(s.k_pages_free), double(s.k_pages_cached)},
          {"v", double(s.v_pages_used), double(s.v_pages_free), double(s.v_pages_cached)}};
}

}  // namespace

EngineMetrics::EngineMetrics(MetricsRegistry* registry, const std::string& model_name,
                             int32_t max_model_len, const CacheConfigLabels& cc)
    : registry_(registry), model_name_(model_name) {
  const MetricLabels m = {{"model_name", model_name}};
  auto with = [&](const char* k, const std::string& v) {
    MetricLabels l = m;
    l.emplace_back(k, v);
    return l;
  };
  MetricsRegistry& r = *registry;

  running_ =
      r.AddGauge("vllm:num_requests_running", "Number of requests in model execution batches.", m);
  waiting_ =
      r.AddGauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", m);
  kv_usage_ =
      r.AddGauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", m);
  prefix_queries_ = r.AddCounter("vllm:prefix_cache_queries_total",
                                 "Prefix cache queries, in terms of number of queried tokens.", m);
  prefix_hits_ = r.AddCounter("vllm:prefix_cache_hits_total",
                              "Prefix cache hits, in terms of number of cached tokens.", m);
  preemptions_ = r.AddCounter("vllm:num_preemptions_total",
                              "Cumulative number of preemption from the engine.", m);
  prompt_tokens_ =
      r.AddCounter("vllm:prompt_tokens_total", "Number of prefill tokens processed.", m);
  generation_tokens_ =
      r.AddCounter("vllm:generation_tokens_total", "Number of generation tokens processed.", m);
  const char* kSuccessHelp = "Count of successfully processed requests.";
  success_stop_ =
      r.AddCounter("vllm:request_success_total", kSuccessHelp, with("finished_reason", "stop"));
  success_length_ =
      r.AddCounter("vllm:request_success_total", kSuccessHelp, with("finished_reason", "length"));
  success_abort_ =
      r.AddCounter("vllm:request_success_total", kSuccessHelp, with("finished_reason", "abort"));

  const std::vector<double> token_buckets = OneTwoFiveBuckets(std::max(max_model_len, 1));
  request_prompt_tokens_ = r.AddHistogram("vllm:request_prompt_tokens",
                                          "Number of prefill tokens processed.", m, token_buckets);
  request_generation_tokens_ = r.AddHistogram(
      "vllm:request_generation_tokens", "Number of generation tokens processed.", m, token_buckets);
  ttft_ = r.AddHistogram("vllm:time_to_first_token_seconds",
                         "Histogram of time to first token in seconds.", m, TtftBuckets());
  itl_ = r.AddHistogram("vllm:inter_token_latency_seconds",
                        "Histogram of inter-token latency in seconds.", m, InterTokenBuckets());
  e2e_ = r.AddHistogram("vllm:e2e_request_latency_seconds",
                        "Histogram of e2e request latency in seconds.", m, RequestLatencyBuckets());
  queue_time_ = r.AddHistogram("vllm:request_queue_time_seconds",
                               "Histogram of time spent in WAITING phase for request.", m,
                               RequestLatencyBuckets());
  inference_time_ = r.AddHistogram("vllm:request_inference_time_seconds",
                                   "Histogram of time spent in RUNNING phase for request.", m,
                                   RequestLatencyBuckets());
  prefill_time_ = r.AddHistogram("vllm:request_prefill_time_seconds",
                                 "Histogram of time spent in PREFILL phase for request.", m,
                                 RequestLatencyBuckets());
  decode_time_ = r.AddHistogram("vllm:request_decode_time_seconds",
                                "Histogram of time spent in DECODE phase for request.", m,
                                RequestLatencyBuckets());

  MetricLabels info = m;
  info.emplace_back("block_size", absl::StrCat(cc.block_size));
  info.emplace_back("cache_dtype", cc.cache_dtype);
  info.emplace_back("enable_prefix_caching", cc.enable_prefix_caching ? "True" : "False");
  info.emplace_back("gpu_memory_utilization",
                    metrics_internal::FormatValue(cc.gpu_memory_utilization));
  info.emplace_back("num_gpu_blocks", absl::StrCat(cc.num_gpu_blocks));
  info.emplace_back("kv_sink_tokens", absl::StrCat(cc.sink_tokens));
  info.emplace_back("kv_boost_channels", absl::StrCat(cc.boost_channels));
  info.emplace_back("kv_cache_bytes", absl::StrCat(cc.kv_cache_bytes));
  r.AddGauge("vllm:cache_config_info", "Information of the LLMEngine CacheConfig", info)->Set(1);

  const char* kBytesHelp = "KV cache bytes in use by storage kind (sink, tail, k_page, v_page).";
  bytes_sink_ = r.AddGauge("kitty_kv_cache_bytes", kBytesHelp, with("kind", "sink"));
  bytes_tail_ = r.AddGauge("kitty_kv_cache_bytes", kBytesHelp, with("kind", "tail"));
  bytes_k_page_ = r.AddGauge("kitty_kv_cache_bytes", kBytesHelp, with("kind", "k_page"));
  bytes_v_page_ = r.AddGauge("kitty_kv_cache_bytes", kBytesHelp, with("kind", "v_page"));
  bytes_per_element_ =
      r.AddGauge("kitty_kv_bytes_per_element",
                 "Average stored bytes per cached K/V element, sinks, tails and pages included "
                 "(x8 = effective bits per element; fp16 = 2); 0 while nothing is cached.",
                 m);
  compression_ratio_ = r.AddGauge("kitty_kv_compression_ratio",
                                  "KV cache compression versus fp16 (16 / effective bits); 0 while "
                                  "nothing is cached.",
                                  m);
  capacity_tokens_ = r.AddGauge("kitty_kv_capacity_tokens",
                                "Tokens that fit in the KV cache in this cache mode.", m);
  pack_jobs_ =
      r.AddCounter("kitty_pack_jobs_total", "Pages sealed (packed from a full-precision tail).", m);
  evictions_ = r.AddCounter("kitty_prefix_cache_evictions_total",
                            "Cached prefix pages evicted to make room.", m);
  Update(EngineStats{}, CacheInfo{});
}

void EngineMetrics::Update(const EngineStats& s, const CacheInfo& cache) {
  running_->Set(s.num_running);
  waiting_->Set(s.num_waiting);
  kv_usage_->Set(s.kv_cache_usage);
  prefix_queries_->IncrementTo(static_cast<double>(s.prefix_cache_queries_tokens));
  prefix_hits_->IncrementTo(static_cast<double>(s.prefix_cache_hit_tokens));
  preemptions_->IncrementTo(static_cast<double>(s.num_preemptions));
  prompt_tokens_->IncrementTo(static_cast<double>(s.prompt_tokens_total));
  generation_tokens_->IncrementTo(static_cast<double>(s.generation_tokens_total));
  bytes_sink_->Set(static_cast<double>(s.sink_bytes));
  bytes_tail_->Set(static_cast<double>(s.tail_bytes));
  bytes_k_page_->Set(static_cast<double>(s.k_page_bytes));
  bytes_v_page_->Set(static_cast<double>(s.v_page_bytes));
  const char* kPagesHelp = "KV cache pages by pool (k, v) and state (used, free, cached).";
  for (const PoolPages& p : PagesByPool(s)) {
    const std::pair<const char*, double> states[] = {
        {"used", p.used}, {"free", p.free}, {"cached", p.cached}};
    for (const auto& [state, value] : states) {
      registry_
          ->AddGauge("kitty_kv_pages", kPagesHelp,
                     {{"model_name", model_name_}, {"pool", p.pool}, {"state", state}})
          ->Set(value);
    }
  }
  bytes_per_element_->Set(s.effective_bits_per_element / 8.0);
  compression_ratio_->Set(s.compression_vs_fp16);
  capacity_tokens_->Set(static_cast<double>(cache.capacity_tokens));
  pack_jobs_->IncrementTo(static_cast<double>(s.pack_jobs_total));
  evictions_->IncrementTo(static_cast<double>(s.prefix_cache_evictions));
}

void EngineMetrics::Attach(const Engine* engine) {
  registry_->AddCollectHook([this, engine] { Update(engine->GetStats(), engine->cache_info()); });
}

void EngineMetrics::OnFirstToken(double ttft_s) { ttft_->Observe(ttft_s); }

void EngineMetrics::OnInterTokenLatency(double itl_s) { itl_->Observe(itl_s); }

void EngineMetrics::OnRequestFinished(const FinishedRequestInfo& info) {
  if (info.finish_reason == "stop") {
    success_stop_->Increment();
  } else if (info.finish_reason == "length") {
    success_length_->Increment();
  } else {
    success_abort_->Increment();
  }
  e2e_->Observe(info.e2e_s);
  // As vLLM: a request aborted while still queued has no queue, prefill or decode time (an
  // observation of 0 pulled the queue-time percentiles down exactly when requests queue), one
  // aborted before its first token no prefill or decode time.
  if (info.scheduled) queue_time_->Observe(info.queue_time_s);
  if (info.got_first_token) {
    prefill_time_->Observe(info.prefill_time_s);
    decode_time_->Observe(info.decode_time_s);
    inference_time_->Observe(info.prefill_time_s + info.decode_time_s);
  }
  request_prompt_tokens_->Observe(info.prompt_tokens);
  request_generation_tokens_->Observe(info.generation_tokens);
}

void RequestLogObserver::OnRequestFinished(const FinishedRequestInfo& info) {
  spdlog::info(
      "request_finished id=\"{}\" reason={} prompt_tokens={} generation_tokens={} "
      "cached_prompt_tokens={} queue_s={:.4f} ttft_s={:.4f} latency_s={:.4f}",
      absl::CHexEscape(info.request_id), info.finish_reason, info.prompt_tokens,
      info.generation_tokens, info.cached_prompt_tokens, info.queue_time_s, info.ttft_s,
      info.e2e_s);
}

}  // namespace kitty::runtime
