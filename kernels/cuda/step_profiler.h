// File: kernels/cuda/step_profiler.h
// -----------------------------------------------------------------------------
// Where the time of a forward step goes, measured with CUDA events on the step's stream
// (METHOD.md: "profile, not guess"). Off unless enabled; when on, Mark(phase) records an event
// and the time from the previous mark is charged to `phase`; EndStep() synchronizes on the
// last event and accumulates. The destructor prints the mean per step of each phase to stderr.
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

  // Starts a step to be profiled (`active` false: this step is not recorded).
  void BeginStep(cudaStream_t stream, bool active) {
    active_ = enabled_ && active;
    if (!active_) return;
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
    for (size_t i = 0; i < marks_.size(); ++i) {
      float ms = 0;
      cudaEventElapsedTime(&ms, events_[i], events_[i + 1]);
      auto it = std::find_if(totals_.begin(), totals_.end(),
                             [&](const auto& t) { return t.first == marks_[i]; });
      if (it == totals_.end()) {
        totals_.emplace_back(marks_[i], 0.0);
        it = totals_.end() - 1;
      }
      it->second += ms;
    }
    ++steps_;
  }

  void Report() {
    if (steps_ == 0) return;
    double sum = 0;
    for (const auto& t : totals_) sum += t.second;
    std::fprintf(stderr, "step profile (%s): %lld decode steps, mean %.3f ms per step\n",
                 label_.c_str(), static_cast<long long>(steps_), sum / steps_);
    for (const auto& t : totals_) {
      std::fprintf(stderr, "  %-22s %9.3f ms  %5.1f%%\n", t.first.c_str(), t.second / steps_,
                   sum > 0 ? 100.0 * t.second / sum : 0.0);
    }
    steps_ = 0;
    totals_.clear();
  }

 private:
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
  std::vector<const char*> marks_;
  std::vector<std::pair<std::string, double>> totals_;  // phase → summed ms
  long long steps_ = 0;
};

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_STEP_PROFILER_H_
