// File: kernels/cuda/step_profiler.h
// -----------------------------------------------------------------------------
// Where the time of a forward step goes, measured with CUDA events on the step's stream
// (METHOD.md: "profile, not guess"). Off unless enabled; when on, Mark(phase) records an event
// and the time from the previous mark is charged to `phase`; EndStep() synchronizes on the
// last event and accumulates. Steps are grouped by kind ("decode": one token per sequence;
// "prefill": any step with a prompt chunk). The destructor prints, per kind, the mean per step
// of each phase to stderr. Profiling costs host time after each step (event reads): do not
// publish throughput measured with it on.
// Host time between marks (planning, launches) shows up in the phase that follows when the
// GPU runs dry, which is the point: a phase far above its kernels' time is host-bound.
//
// Host code only (CUDA runtime API). Thread safety: none (the runner's thread).
#ifndef KITTY_KERNELS_CUDA_STEP_PROFILER_H_
#define KITTY_KERNELS_CUDA_STEP_PROFILER_H_

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace kitty::kernels::cuda {

class StepProfiler {
 public:
  StepProfiler() = default;
  ~StepProfiler() {
    Report();
    for (cudaEvent_t e : events_) cudaEventDestroy(e);
  }
  StepProfiler(const StepProfiler&) = delete;
  StepProfiler& operator=(const StepProfiler&) = delete;

  void Enable(std::string label) {
    enabled_ = true;
    label_ = std::move(label);
  }
  bool enabled() const { return enabled_; }

  // Starts a step of `kind` (a string literal, e.g. "decode") to be profiled.
  void BeginStep(cudaStream_t stream, const char* kind) {
    active_ = enabled_;
    if (!active_) return;
    kind_ = kind;
    stream_ = stream;
    used_ = 0;
    marks_.clear();
    Record();
  }
  // Charges the GPU time since the previous mark to `phase` (a string literal).
  void Mark(const char* phase) {
    if (!active_) return;
    Record();
    marks_.push_back(phase);
  }
  void EndStep() {
    if (!active_) return;
    active_ = false;
    if (cudaEventSynchronize(events_[used_ - 1]) != cudaSuccess) return;
    Kind& k = KindOf(kind_);
    for (size_t i = 0; i < marks_.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, events_[i], events_[i + 1]);
      auto it = std::find_if(k.totals.begin(), k.totals.end(),
                             [&](const auto& t) { return t.first == marks_[i]; });
      if (it == k.totals.end()) {
        k.totals.emplace_back(marks_[i], 0.0);
        it = k.totals.end() - 1;
      }
      it->second += ms;
    }
    ++k.steps;
  }

  void Report() {
    for (const Kind& k : kinds_) {
      if (k.steps == 0) continue;
      double sum = 0;
      for (const auto& t : k.totals) sum += t.second;
      std::fprintf(stderr, "step profile (%s): %lld %s steps, mean %.3f ms per step\n",
                   label_.c_str(), k.steps, k.name.c_str(), sum / k.steps);
      for (const auto& t : k.totals) {
        std::fprintf(stderr, "  %-22s %9.3f ms  %5.1f%%\n", t.first.c_str(), t.second / k.steps,
                     sum > 0 ? 100.0 * t.second / sum : 0.0);
      }
    }
    kinds_.clear();
  }

 private:
  struct Kind {
    std::string name;
    long long steps = 0;
    std::vector<std::pair<std::string, double>> totals;  // phase → summed ms
  };
  Kind& KindOf(const char* name) {
    for (Kind& k : kinds_) {
      if (k.name == name) return k;
    }
    kinds_.push_back(Kind{name, 0, {}});
    return kinds_.back();
  }

  void Record() {
    if (used_ == events_.size()) {
      cudaEvent_t e;
      if (cudaEventCreate(&e) != cudaSuccess) {
        active_ = false;
        return;
      }
      events_.push_back(e);
    }
    cudaEventRecord(events_[used_++], stream_);
  }

  bool enabled_ = false, active_ = false;
  std::string label_;
  cudaStream_t stream_ = nullptr;
  std::vector<cudaEvent_t> events_;
  size_t used_ = 0;
  const char* kind_ = "";
  std::vector<const char*> marks_;
  std::vector<Kind> kinds_;
};

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_STEP_PROFILER_H_
