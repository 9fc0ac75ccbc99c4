#include "runtime/metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace kitty::runtime {
namespace metrics_internal {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  KITTY_CHECK(ec == std::errc()) << "to_chars failed";
  return std::string(buf, end);
}

std::string FormatBucketBound(double v) {
  std::string s = FormatValue(v);
  if (std::isfinite(v) && s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string EscapeLabelValue(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string EscapeHelp(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {
bool IsAlpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
}  // namespace

bool IsValidMetricName(const std::string& name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAlpha(c) || c == '_' || c == ':' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

bool IsValidLabelName(const std::string& name) {
  if (name.empty() || name.rfind("__", 0) == 0) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = IsAlpha(c) || c == '_' || (i > 0 && IsDigit(c));
    if (!ok) return false;
  }
  return true;
}

}  // namespace metrics_internal

using metrics_internal::EscapeHelp;
using metrics_internal::EscapeLabelValue;
using metrics_internal::FormatBucketBound;
using metrics_internal::FormatValue;

void Counter::Increment(double delta) {
  if (!(delta > 0)) return;  // also drops NaN
  value_.fetch_add(delta, std::memory_order_relaxed);
}

void Counter::IncrementTo(double total) {
  double cur = value_.load(std::memory_order_relaxed);
  while (total > cur && !value_.compare_exchange_weak(cur, total, std::memory_order_relaxed)) {
  }
}

void Gauge::Increment(double delta) { value_.fetch_add(delta, std::memory_order_relaxed); }

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    KITTY_CHECK(std::isfinite(bounds_[i])) << "histogram bound " << i << " is not finite";
    if (i > 0) KITTY_CHECK_LT(bounds_[i - 1], bounds_[i]) << "histogram bounds must ascend";
  }
  absl::MutexLock lock(&mu_);
  counts_.assign(bounds_.size() + 1, 0);
}

void Histogram::Observe(double v) {
  // Bucket i counts bounds_[i-1] < v <= bounds_[i] (Prometheus `le` semantics).
  const size_t i = std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin();
  absl::MutexLock lock(&mu_);
  ++counts_[i];
  sum_ += v;
  ++count_;
}

Histogram::Snapshot Histogram::Collect() const {
  Snapshot s;
  s.bounds = bounds_;
  absl::MutexLock lock(&mu_);
  s.cumulative.resize(counts_.size());
  uint64_t acc = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    acc += counts_[i];
    s.cumulative[i] = acc;
  }
  s.sum = sum_;
  s.count = count_;
  return s;
}

std::vector<double> OneTwoFiveBuckets(double max_value) {
  std::vector<double> out;
  for (double scale = 1;; scale *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      const double v = m * scale;
      if (v > max_value) return out;
      out.push_back(v);
    }
  }
}

MetricsRegistry::Series* MetricsRegistry::GetSeries(const std::string& name,
                                                    const std::string& help, Type type,
                                                    MetricLabels labels,
                                                    const std::vector<double>* bounds) {
  KITTY_CHECK(metrics_internal::IsValidMetricName(name)) << "bad metric name \"" << name << "\"";
  if (type == Type::kCounter) {
    KITTY_CHECK(name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0)
        << "counter \"" << name << "\" must end in _total";
  }
  for (const auto& [k, v] : labels) {
    KITTY_CHECK(metrics_internal::IsValidLabelName(k))
        << "bad label name \"" << k << "\" on " << name;
    KITTY_CHECK(!(type == Type::kHistogram && k == "le")) << "histogram " << name << " has le";
  }
  Family* family = nullptr;
  for (auto& f : families_) {
    if (f->name == name) family = f.get();
  }
  if (family == nullptr) {
    auto f = std::make_unique<Family>();
    f->name = name;
    f->help = help;
    f->type = type;
    if (bounds != nullptr) f->bounds = *bounds;
    family = f.get();
    families_.push_back(std::move(f));
  }
  KITTY_CHECK(family->type == type) << "metric " << name << " registered with another type";
  if (bounds != nullptr) {
    KITTY_CHECK(family->bounds == *bounds) << "histogram " << name << " with other buckets";
  }
  for (auto& s : family->series) {
    if (s->labels == labels) return s.get();
  }
  auto s = std::make_unique<Series>();
  s->labels = std::move(labels);
  switch (type) {
    case Type::kCounter:
      s->counter = std::make_unique<Counter>();
      break;
    case Type::kGauge:
      s->gauge = std::make_unique<Gauge>();
      break;
    case Type::kHistogram:
      s->histogram = std::make_unique<Histogram>(family->bounds);
      break;
  }
  family->series.push_back(std::move(s));
  return family->series.back().get();
}

Counter* MetricsRegistry::AddCounter(const std::string& name, const std::string& help,
                                     MetricLabels labels) {
  absl::MutexLock lock(&mu_);
  return GetSeries(name, help, Type::kCounter, std::move(labels), nullptr)->counter.get();
}

Gauge* MetricsRegistry::AddGauge(const std::string& name, const std::string& help,
                                 MetricLabels labels) {
  absl::MutexLock lock(&mu_);
  return GetSeries(name, help, Type::kGauge, std::move(labels), nullptr)->gauge.get();
}

Histogram* MetricsRegistry::AddHistogram(const std::string& name, const std::string& help,
                                         MetricLabels labels, std::vector<double> bounds) {
  absl::MutexLock lock(&mu_);
  return GetSeries(name, help, Type::kHistogram, std::move(labels), &bounds)->histogram.get();
}

void MetricsRegistry::AddCollectHook(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  hooks_.push_back(std::move(hook));
}

namespace {

// `{a="1",b="2"}` with an optional extra label appended (the histogram's `le`); "" if none.
std::string LabelText(const MetricLabels& labels, const char* extra_name = nullptr,
                      const std::string& extra_value = "") {
  if (labels.empty() && extra_name == nullptr) return "";
  std::string out = "{";
  bool first = true;
  for (const auto& [k, v] : labels) {
    absl::StrAppend(&out, first ? "" : ",", k, "=\"", EscapeLabelValue(v), "\"");
    first = false;
  }
  if (extra_name != nullptr) {
    absl::StrAppend(&out, first ? "" : ",", extra_name, "=\"", EscapeLabelValue(extra_value), "\"");
  }
  out += "}";
  return out;
}

}  // namespace

std::string MetricsRegistry::Serialize() const {
  std::vector<std::function<void()>> hooks;
  {
    absl::MutexLock lock(&mu_);
    hooks = hooks_;
  }
  for (const auto& h : hooks) h();

  absl::MutexLock lock(&mu_);
  std::string out;
  for (const auto& f : families_) {
    const char* type_name = f->type == Type::kCounter ? "counter"
                            : f->type == Type::kGauge ? "gauge"
                                                      : "histogram";
    absl::StrAppend(&out, "# HELP ", f->name, " ", EscapeHelp(f->help), "\n");
    absl::StrAppend(&out, "# TYPE ", f->name, " ", type_name, "\n");
    for (const auto& s : f->series) {
      switch (f->type) {
        case Type::kCounter:
          absl::StrAppend(&out, f->name, LabelText(s->labels), " ",
                          FormatValue(s->counter->value()), "\n");
          break;
        case Type::kGauge:
          absl::StrAppend(&out, f->name, LabelText(s->labels), " ", FormatValue(s->gauge->value()),
                          "\n");
          break;
        case Type::kHistogram: {
          const Histogram::Snapshot snap = s->histogram->Collect();
          for (size_t i = 0; i < snap.cumulative.size(); ++i) {
            const std::string le =
                i < snap.bounds.size() ? FormatBucketBound(snap.bounds[i]) : "+Inf";
            absl::StrAppend(&out, f->name, "_bucket", LabelText(s->labels, "le", le), " ",
                            snap.cumulative[i], "\n");
          }
          absl::StrAppend(&out, f->name, "_sum", LabelText(s->labels), " ", FormatValue(snap.sum),
                          "\n");
          absl::StrAppend(&out, f->name, "_count", LabelText(s->labels), " ", snap.count, "\n");
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace kitty::runtime
