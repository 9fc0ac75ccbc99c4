// File: runtime/engine_metrics.h
// -----------------------------------------------------------------------------
// The engine's Prometheus metrics (DESIGN.md §7) and its per-request log line.
//
// EngineMetrics registers the vLLM-named metrics (same names, meanings, units and histogram
// buckets as vLLM v1's PrometheusStatLogger) and the kitty_* memory metrics in a
// MetricsRegistry, every series labelled model_name="<served model name>":
//   - per-request histograms and finished-request counters come from EngineObserver events
//     (engine thread; each is a few atomic adds or one short histogram lock);
//   - gauges and cumulative counters are copied from Engine::GetStats() at scrape time by a
//     registry collect hook (Attach()).
//
// RequestLogObserver writes one structured line per finished request through spdlog.
//
// Thread safety: both are thread-safe; observer methods never block.
#ifndef KITTY_RUNTIME_ENGINE_METRICS_H_
#define KITTY_RUNTIME_ENGINE_METRICS_H_

#include <string>

#include "runtime/engine.h"
#include "runtime/metrics.h"

namespace kitty::runtime {

// The label values of vllm:cache_config_info besides model_name (vLLM's CacheConfig fields
// where they exist, then kitty's own).
struct CacheConfigLabels {
  std::string cache_dtype;
  int32_t block_size = 0;  // tokens per page
  int32_t num_gpu_blocks = 0;
  bool enable_prefix_caching = true;
  double gpu_memory_utilization = 0;
  int32_t sink_tokens = 0;
  int32_t boost_channels = 0;
  int64_t kv_cache_bytes = 0;
};

class EngineMetrics : public EngineObserver {
 public:
  // Registers every series (so all of them are exposed from the first scrape). `max_model_len`
  // sets the token-count histogram buckets (vLLM: 1-2-5 up to max_model_len).
  EngineMetrics(MetricsRegistry* registry, const std::string& model_name, int32_t max_model_len,
                const CacheConfigLabels& cache_config);
  EngineMetrics(const EngineMetrics&) = delete;
  EngineMetrics& operator=(const EngineMetrics&) = delete;

  // Copies a stats snapshot into the gauges and cumulative counters.
  void Update(const EngineStats& stats, const CacheInfo& cache);
  // Adds a collect hook that calls Update(engine->GetStats(), engine->cache_info()) before each
  // scrape. REQUIRES: `engine` outlives the registry's last Serialize().
  void Attach(const Engine* engine);

  // EngineObserver.
  void OnFirstToken(double ttft_s) override;
  void OnInterTokenLatency(double itl_s) override;
  void OnRequestFinished(const FinishedRequestInfo& info) override;

 private:
  MetricsRegistry* const registry_;
  const std::string model_name_;

  Gauge* running_;
  Gauge* waiting_;
  Gauge* kv_usage_;
  Counter* prefix_queries_;
  Counter* prefix_hits_;
  Counter* preemptions_;
  Counter* prompt_tokens_;
  Counter* generation_tokens_;
  Counter* success_stop_;
  Counter* success_length_;
  Counter* success_abort_;
  Histogram* ttft_;
  Histogram* itl_;
  Histogram* e2e_;
  Histogram* queue_time_;
  Histogram* prefill_time_;
  Histogram* decode_time_;
  Histogram* inference_time_;
  Histogram* request_prompt_tokens_;
  Histogram* request_generation_tokens_;
  Gauge* bytes_sink_;
  Gauge* bytes_tail_;
  Gauge* bytes_k_page_;
  Gauge* bytes_v_page_;
  Gauge* bytes_per_element_;
  Gauge* compression_ratio_;
  Gauge* capacity_tokens_;
  Counter* pack_jobs_;
  Counter* evictions_;
};

class RequestLogObserver : public EngineObserver {
 public:
  void OnRequestFinished(const FinishedRequestInfo& info) override;
};

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_ENGINE_METRICS_H_
