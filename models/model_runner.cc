#include "models/model_runner.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "models/kv_cache.h"

namespace kitty::models {
namespace {

class CpuRunner : public ModelRunner {
 public:
  explicit CpuRunner(const LoadedModel& m) : m_(m) {
    KITTY_CHECK(m.model != nullptr) << "the CPU runner needs host weights (LoadModel host_weights)";
  }
  std::string device_name() const override { return "cpu"; }
  kernels::DType kv_dtype() const override { return kernels::DType::kFloat32; }
  int64_t AvailableKvBytes(double, int) const override { return 0; }
  int64_t weight_bytes() const override { return 4 * m_.model->num_parameters(); }
  double MeasureCopyBandwidth() override {
    // memcpy of 256 MiB, best of 3: bytes read + bytes written per second.
    const size_t n = size_t{256} << 20;
    std::vector<char> a(n, 1), b(n, 0);
    double best = 0;
    for (int i = 0; i < 3; ++i) {
      const auto t0 = std::chrono::steady_clock::now();
      std::memcpy(b.data(), a.data(), n);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      best = std::max(best, 2.0 * n / s);
    }
    return best;
  }
  absl::Status AllocateKv(const kernels::KvCacheSpec& spec, const KvPoolSizes& s) override {
    cache_ = std::make_unique<KvCache>(spec, m_.config.num_layers, s.num_k_pages, s.num_v_pages,
                                       s.num_sink_blocks, s.num_tail_slots);
    return absl::OkStatus();
  }
  int64_t kv_bytes() const override { return cache_ ? cache_->total_bytes() : 0; }
  absl::Status Forward(absl::Span<const SequenceStep> batch, std::vector<float>* logits) override {
    KITTY_CHECK(cache_ != nullptr) << "AllocateKv first";
    return m_.model->Forward(batch, *cache_, logits);
  }
  void CopySinkBlock(int32_t src, int32_t dst) override { cache_->CopySinkBlock(src, dst); }
  void CopyTailSlot(int32_t src, int32_t dst) override { cache_->CopyTailSlot(src, dst); }

 private:
  const LoadedModel& m_;
  std::unique_ptr<KvCache> cache_;
};

}  // namespace

std::unique_ptr<ModelRunner> MakeCpuRunner(const LoadedModel& model) {
  return std::make_unique<CpuRunner>(model);
}

#ifdef KITTY_HAVE_CUDA_RUNNER
absl::StatusOr<std::unique_ptr<ModelRunner>> MakeCudaRunner(const LoadedModel& model,
                                                            int cuda_graph_max_batch);
bool CudaDeviceAvailable();
#endif

absl::StatusOr<std::unique_ptr<ModelRunner>> MakeRunner(const LoadedModel& model,
                                                        const std::string& device,
                                                        const RunnerOptions& options) {
  if (options.cuda_graph_max_batch < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--cuda-graph-max-batch must be >= 0 (0: no CUDA graphs), got ",
                     options.cuda_graph_max_batch));
  }
  if (device == "cpu") return MakeCpuRunner(model);
#ifdef KITTY_HAVE_CUDA_RUNNER
  if (device == "cuda" || (device.empty() && CudaDeviceAvailable())) {
    return MakeCudaRunner(model, options.cuda_graph_max_batch);
  }
#else
  if (device == "cuda") {
    return absl::FailedPreconditionError(
        "--device cuda: this build has no CUDA backend (configure with -DKITTY_CUDA=ON)");
  }
#endif
  if (!device.empty() && device != "cuda") {
    return absl::InvalidArgumentError(
        absl::StrCat("--device: unknown device \"", device, "\" (use cuda or cpu)"));
  }
  return MakeCpuRunner(model);
}

}  // namespace kitty::models
