// gemm_bench: the dense GEMMs of one forward step (per layer: q/k/v, o-proj, gate/up, down;
// then lm_head) for model shapes at given row counts (decode batch sizes, prefill chunks), bf16
// operands as the runner calls them, timed through CublasGemm with GemmTuner off (cublasGemmEx's
// default) and on (the timed choice), each call alone on a cold L2 (as a layer's weights are in
// a forward step), side by side with an 8192^3 GEMM's rate as the roofline.
// Usage: gemm_bench [--model qwen3-4b|llama3-8b]... [--rows N]... [--iters N] [--search]
//        (prints a markdown table; defaults: both models, rows 1 16 64 128 256 267 512 2048)
// --search adds, per shape, the fastest of a wide sweep of cuBLASLt configurations
// (bench/gemm_search.h), timed in one interleaved loop with the default and the tuned GEMM.
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "bench/gemm_search.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/model_ops_host.h"

namespace kitty::kernels::cuda {
namespace {

#define CK(expr)                                                               \
  do {                                                                         \
    cudaError_t e_ = (expr);                                                   \
    KITTY_CHECK(e_ == cudaSuccess) << #expr << ": " << cudaGetErrorString(e_); \
  } while (0)

struct Model {
  std::string name;
  int hidden, inter, q_heads, kv_heads, head_dim, vocab, layers;
};
const Model kModels[] = {{"qwen3-4b", 2560, 9728, 32, 8, 128, 151936, 36},
                         {"llama3-8b", 4096, 14336, 32, 8, 128, 128256, 32}};

struct Gemm {
  const char* name;
  int k, n;
  DType out;
  float beta;
  int per_step;  // calls per step (layers, or 1 for lm_head)
};

std::vector<Gemm> GemmsOf(const Model& m) {
  const int qdim = m.q_heads * m.head_dim, qkv = (m.q_heads + 2 * m.kv_heads) * m.head_dim;
  return {{"qkv", m.hidden, qkv, DType::kFloat32, 0.0f, m.layers},
          {"o-proj", qdim, m.hidden, DType::kFloat32, 1.0f, m.layers},
          {"gate/up", m.hidden, 2 * m.inter, DType::kBFloat16, 0.0f, m.layers},
          {"down", m.inter, m.hidden, DType::kFloat32, 1.0f, m.layers},
          {"lm_head", m.hidden, m.vocab, DType::kFloat32, 0.0f, 1}};
}

// Random bf16 x [rows][k] (std 1) and w [n][k] (std w_std; zeros run faster: METHOD.md), y zero.
struct Operands {
  DeviceBuffer x, w, y;
  Operands(const Gemm& s, int rows, float w_std, cudaStream_t stream) {
    const size_t xe = size_t{1} * rows * s.k, we = size_t{1} * s.n * s.k;
    const size_t yb = size_t{1} * rows * s.n * (s.out == DType::kFloat32 ? 4 : 2);
    KITTY_CHECK_OK(x.Allocate(2 * xe, "x"));
    KITTY_CHECK_OK(w.Allocate(2 * we, "w"));
    KITTY_CHECK_OK(y.Allocate(yb, "y"));
    KITTY_CHECK_OK(RandomFill(DType::kBFloat16, x.get(), xe, 3, 1.0f, stream));
    KITTY_CHECK_OK(RandomFill(DType::kBFloat16, w.get(), we, 4, w_std, stream));
    CK(cudaMemsetAsync(y.get(), 0, yb, stream));
  }
};

// Times (ms) of one call with GemmTuner off and on: the medians over 10 `iters` calls of
// each, every call timed alone after an L2 flush (`flush`: a memset of twice the L2; in a
// forward step each layer's weights come from HBM), off and on alternating, after 3 warm-ups
// each (a tuned shape's first call tunes).
std::pair<float, float> TimeLinear(CublasGemm& off, CublasGemm& on, const Gemm& s, int rows,
                                   const void* x, const void* w, void* y, int iters,
                                   DeviceBuffer& flush, cudaStream_t stream) {
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  auto call = [&](CublasGemm& g) {
    KITTY_CHECK_OK(g.Linear(DType::kBFloat16, x, rows, s.k, w, s.n, s.out, y, s.beta));
  };
  for (int i = 0; i < 3; ++i) {
    call(off);
    call(on);
  }
  std::vector<float> ms[2];
  for (int i = 0; i < 20 * iters; ++i) {
    const int which = (i / 2 + i) % 2;  // off on, on off, off on, ...
    CK(cudaMemsetAsync(flush.get(), i & 0xff, flush.bytes(), stream));
    CK(cudaEventRecord(e0, stream));
    call(which == 0 ? off : on);
    CK(cudaEventRecord(e1, stream));
    CK(cudaEventSynchronize(e1));
    float t = 0;
    CK(cudaEventElapsedTime(&t, e0, e1));
    ms[which].push_back(t);
  }
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  for (auto& v : ms) std::sort(v.begin(), v.end());
  return {ms[0][ms[0].size() / 2], ms[1][ms[1].size() / 2]};
}

int Main(int argc, char** argv) {
  std::vector<std::string> models;
  std::vector<int> rows;
  int iters = 2;
  bool search = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--search") {
      search = true;
    } else if (i + 1 < argc && a == "--model") {
      models.push_back(argv[++i]);
    } else if (i + 1 < argc && a == "--rows") {
      const int r = std::atoi(argv[++i]);
      if (r <= 0) {
        std::fprintf(stderr, "gemm_bench: --rows needs a positive count, got %s\n", argv[i]);
        return 2;
      }
      rows.push_back(r);
    } else if (i + 1 < argc && a == "--iters") {
      iters = std::max(1, std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: gemm_bench [--model qwen3-4b|llama3-8b]... [--rows N]... [--iters N] "
                   "[--search]\n");
      return 2;
    }
  }
  if (models.empty()) models = {"qwen3-4b", "llama3-8b"};
  if (rows.empty()) rows = {1, 16, 64, 128, 256, 267, 512, 2048};
  int dev_count = 0;
  if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
    std::fprintf(stderr, "gemm_bench: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  CK(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream = nullptr;
  CK(cudaStreamCreate(&stream));
  auto off = CublasGemm::Create(stream, GemmTuning::kOff);
  auto on = CublasGemm::Create(stream, GemmTuning::kOn);
  KITTY_CHECK_OK(off.status());
  KITTY_CHECK_OK(on.status());

  DeviceBuffer flush;
  KITTY_CHECK_OK(flush.Allocate(2 * static_cast<size_t>(prop.l2CacheSize), "L2 flush"));
  // Roofline: an 8192^3 bf16 GEMM, default and tuned.
  const int big = 8192;
  const Gemm sq{"8192^3", big, big, DType::kBFloat16, 0.0f, 1};
  const Operands bo(sq, big, 1.0f, stream);
  const double big_flop = 2.0 * big * big * double{big};
  const auto [big_off, big_on] =
      TimeLinear(**off, **on, sq, big, bo.x.get(), bo.w.get(), bo.y.get(), 1, flush, stream);
  const double rate_off = big_flop / (big_off * 1e-3), rate_on = big_flop / (big_on * 1e-3);
  std::printf("# GEMMs of one forward step, bf16, %s (%d SMs)\n\n", prop.name,
              prop.multiProcessorCount);
  std::printf("8192^3 bf16: default %.0f TFLOP/s, tuned %.0f TFLOP/s\n\n", rate_off / 1e12,
              rate_on / 1e12);
  std::printf(
      "| model | rows | GEMM | k x n | default us | tuned us | speedup | tuned TFLOP/s | %% of "
      "8192^3 |%s\n|---|---|---|---|---|---|---|---|---|%s\n",
      search ? " searched us | default / tuned us, same loop | configs checked / timed | fastest "
               "configuration |"
             : "",
      search ? "---|---|---|---|" : "");
  for (const std::string& mn : models) {
    const Model* m = nullptr;
    for (const Model& c : kModels)
      if (c.name == mn) m = &c;
    if (m == nullptr) {
      std::fprintf(stderr, "gemm_bench: unknown model %s (qwen3-4b, llama3-8b)\n", mn.c_str());
      return 2;
    }
    const std::vector<Gemm> gemms = GemmsOf(*m);
    for (int r : rows) {
      double step_off = 0, step_on = 0;
      for (const Gemm& s : gemms) {
        const Operands o(s, r, 0.02f, stream);
        const auto [t_off, t_on] =
            TimeLinear(**off, **on, s, r, o.x.get(), o.w.get(), o.y.get(), iters, flush, stream);
        step_off += t_off * s.per_step;
        step_on += t_on * s.per_step;
        const double flop = 2.0 * r * s.k * static_cast<double>(s.n);
        std::printf("| %s | %d | %s | %dx%d | %.1f | %.1f | %.2fx | %.0f | %.0f%% |",
                    m->name.c_str(), r, s.name, s.k, s.n, t_off * 1e3, t_on * 1e3, t_off / t_on,
                    flop / (t_on * 1e-3) / 1e12, 100.0 * flop / (t_on * 1e-3) / rate_off);
        if (search) {
          const bench::SearchShape shape{
              r, s.k, s.n, s.out == DType::kFloat32 ? CUDA_R_32F : CUDA_R_16BF, s.beta};
          auto run = [&](CublasGemm& g) {
            return g.Linear(DType::kBFloat16, o.x.get(), r, s.k, o.w.get(), s.n, s.out, o.y.get(),
                            s.beta);
          };
          absl::StatusOr<bench::SearchResult> sr = bench::SearchLtConfigs(
              stream, shape, o.w.get(), o.x.get(), o.y.get(), flush, [&] { return run(**off); },
              [&] { return run(**on); });
          if (sr.ok()) {
            std::printf(" %.1f | %.1f / %.1f | %d / %d | %s |", sr->best_ms * 1e3,
                        sr->default_ms * 1e3, sr->tuned_ms * 1e3, sr->checked, sr->timed,
                        sr->best.c_str());
          } else {
            std::printf(" | | | %s |", std::string(sr.status().message()).c_str());
          }
        }
        std::printf("\n");
        std::fflush(stdout);
      }
      std::printf("| %s | %d | **step total** | | %.0f | %.0f | **%.2fx** | | |%s\n",
                  m->name.c_str(), r, step_off * 1e3, step_on * 1e3, step_off / step_on,
                  search ? " | | | |" : "");
      std::fflush(stdout);
    }
  }
  std::printf("\nshapes tuned %lld, of which a cuBLASLt algorithm won %lld\n",
              static_cast<long long>((*on)->shapes_tuned()),
              static_cast<long long>((*on)->shapes_lt()));
  CK(cudaStreamDestroy(stream));
  return 0;
}

}  // namespace
}  // namespace kitty::kernels::cuda

int main(int argc, char** argv) { return kitty::kernels::cuda::Main(argc, argv); }
