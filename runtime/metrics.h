// File: runtime/metrics.h
// -----------------------------------------------------------------------------
// A small Prometheus metrics registry: counters, gauges and histograms with labels, rendered in
// the Prometheus text exposition format 0.0.4 (what `/metrics` serves).
//
// Why not prometheus-cpp (DESIGN.md §8)? Debian 12 does not package it, and what kitty-serve
// needs is a few dozen series scraped once a second: a registry, atomics and a text writer.
//
//   MetricsRegistry registry;
//   Counter* c = registry.AddCounter("vllm:prompt_tokens_total", "Prefill tokens.",
//                                    {{"model_name", "m"}});
//   c->Increment(7);
//   std::string text = registry.Serialize();
//
// Names: a metric name matches [a-zA-Z_:][a-zA-Z0-9_:]*, a label name [a-zA-Z_][a-zA-Z0-9_]*
// and must not start with "__"; counter names end in "_total" (the family is exposed under the
// full name, as prometheus-cpp and prometheus_client do); histograms must not carry an "le"
// label. Breaking these is a programming error (KITTY_CHECK), not a runtime condition.
//
// Thread safety: every method is thread-safe. The returned metric pointers are owned by the
// registry and stay valid for its lifetime; updating them is lock-free for counters and gauges
// and takes a short per-histogram lock for histograms.
#ifndef KITTY_RUNTIME_METRICS_H_
#define KITTY_RUNTIME_METRICS_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace kitty::runtime {

// Ordered label pairs: the order given is the order exposed.
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// A monotonically increasing value.
class Counter {
 public:
  Counter() = default;
  Counter(const Counter&) = delete;
  Counter& operator=(const Counter&) = delete;

  // REQUIRES: delta >= 0 (negative deltas are ignored).
  void Increment(double delta = 1.0);
  // Raises the value to `total` when that is larger (mirrors a cumulative total kept
  // elsewhere, e.g. the engine's stats snapshot); never lowers it.
  void IncrementTo(double total);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// A value that goes up and down.
class Gauge {
 public:
  Gauge() = default;
  Gauge(const Gauge&) = delete;
  Gauge& operator=(const Gauge&) = delete;

  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Increment(double delta = 1.0);
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

// Counts observations into cumulative buckets (upper bounds, ascending; +Inf is implicit).
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;        // as given, without +Inf
    std::vector<uint64_t> cumulative;  // bounds.size() + 1 entries; the last is +Inf
    double sum = 0;
    uint64_t count = 0;
  };

  // REQUIRES: `bounds` strictly ascending, finite.
  explicit Histogram(std::vector<double> bounds);
  Histogram(const Histogram&) = delete;
  Histogram& operator=(const Histogram&) = delete;

  void Observe(double v) ABSL_LOCKS_EXCLUDED(mu_);
  Snapshot Collect() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket (not cumulative), +Inf last
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
};

// vLLM's bucket helper: 1, 2, 5, 10, 20, 50, ... up to and including `max_value`.
std::vector<double> OneTwoFiveBuckets(double max_value);

class MetricsRegistry {
 public:
  MetricsRegistry() = default;
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // Each returns the series of family `name` with `labels`, creating the family (with `help`)
  // and the series on first use; the same (name, labels) returns the same object. A name
  // reused with another type, or a histogram reused with other buckets, is a CHECK failure.
  Counter* AddCounter(const std::string& name, const std::string& help, MetricLabels labels)
      ABSL_LOCKS_EXCLUDED(mu_);
  Gauge* AddGauge(const std::string& name, const std::string& help, MetricLabels labels)
      ABSL_LOCKS_EXCLUDED(mu_);
  Histogram* AddHistogram(const std::string& name, const std::string& help, MetricLabels labels,
                          std::vector<double> bounds) ABSL_LOCKS_EXCLUDED(mu_);

  // `hook` runs at the start of every Serialize() (on the caller's thread, without the
  // registry lock held), e.g. to copy a stats snapshot into gauges.
  void AddCollectHook(std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_);

  // The text exposition format 0.0.4: per family `# HELP`, `# TYPE`, then its samples;
  // families in registration order, series in creation order.
  std::string Serialize() const ABSL_LOCKS_EXCLUDED(mu_);

  static constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name;
    std::string help;
    Type type;
    std::vector<double> bounds;  // histograms
    std::vector<std::unique_ptr<Series>> series;
  };

  Series* GetSeries(const std::string& name, const std::string& help, Type type,
                    MetricLabels labels, const std::vector<double>* bounds)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::vector<std::unique_ptr<Family>> families_ ABSL_GUARDED_BY(mu_);
  std::vector<std::function<void()>> hooks_ ABSL_GUARDED_BY(mu_);
};

// Formatting helpers of the exposition format (exposed for tests).
namespace metrics_internal {
// Shortest round-trip decimal; "+Inf", "-Inf", "NaN" for the special values.
std::string FormatValue(double v);
// Like FormatValue, but integral values get ".0" (prometheus_client's `le` spelling: "1.0").
std::string FormatBucketBound(double v);
// Escapes backslash, double quote and newline.
std::string EscapeLabelValue(const std::string& v);
// Escapes backslash and newline.
std::string EscapeHelp(const std::string& v);
bool IsValidMetricName(const std::string& name);
bool IsValidLabelName(const std::string& name);
}  // namespace metrics_internal

}  // namespace kitty::runtime

#endif  // KITTY_RUNTIME_METRICS_H_
