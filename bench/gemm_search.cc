#include "bench/gemm_search.h"

#include <cublasLt.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"

namespace kitty::bench {
namespace {

using kernels::cuda::CublasStatus;
using kernels::cuda::CudaStatus;

constexpr int kAsk = 128;                        // heuristic results asked for, per query
constexpr int kMaxAlgoIds = 512;                 // algorithm ids read
constexpr int kMaxChecksPerAlgo = 2000;          // sweep configurations checked per id
constexpr int kFirstReps = 3;                    // cold-L2 runs per candidate, first pass
constexpr double kFirstPassBudgetS = 5.0;        // per shape
constexpr int kFinalists = 8;                    // candidates timed again
constexpr int kFinalReps = 15;                   // runs per finalist and reference (median)
constexpr size_t kWorkspace = size_t{32} << 20;  // as CublasGemm's
constexpr int kSplits[] = {1, 2, 4};

// A scalar attribute of an algorithm through `get` (cublasLtMatmulAlgoConfigGetAttribute or
// cublasLtMatmulAlgoCapGetAttribute, which share a signature); T{} if it cannot be read.
template <typename T, typename Attr, typename Get>
T ScalarOf(Get get, const cublasLtMatmulAlgo_t& a, Attr attr) {
  T v{};
  size_t written = 0;
  return get(&a, attr, &v, sizeof(v), &written) == CUBLAS_STATUS_SUCCESS ? v : T{};
}
template <typename T>
T ConfigOf(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoConfigAttributes_t attr) {
  return ScalarOf<T>(cublasLtMatmulAlgoConfigGetAttribute, a, attr);
}
template <typename T>
T CapScalar(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr) {
  return ScalarOf<T>(cublasLtMatmulAlgoCapGetAttribute, a, attr);
}
template <typename T>
void SetConfig(cublasLtMatmulAlgo_t* a, cublasLtMatmulAlgoConfigAttributes_t attr, T v) {
  cublasLtMatmulAlgoConfigSetAttribute(a, attr, &v, sizeof(v));
}
// An array capability of an algorithm (empty if absent).
template <typename T>
std::vector<T> CapArray(const cublasLtMatmulAlgo_t& a, cublasLtMatmulAlgoCapAttributes_t attr) {
  size_t bytes = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, nullptr, 0, &bytes) != CUBLAS_STATUS_SUCCESS ||
      bytes == 0) {
    return {};
  }
  std::vector<T> v(bytes / sizeof(T));
  size_t written = 0;
  if (cublasLtMatmulAlgoCapGetAttribute(&a, attr, v.data(), v.size() * sizeof(T), &written) !=
      CUBLAS_STATUS_SUCCESS) {
    return {};
  }
  v.resize(written / sizeof(T));
  return v;
}

std::string Describe(const cublasLtMatmulAlgo_t& a) {
  return absl::StrFormat(
      "algo %d tile %u stages %u splitk %d red %u swz %u custom %u inner %u cluster %u",
      ConfigOf<int32_t>(a, CUBLASLT_ALGO_CONFIG_ID),
      ConfigOf<uint32_t>(a, CUBLASLT_ALGO_CONFIG_TILE_ID),
      ConfigOf<uint32_t>(a, CUBLASLT_ALGO_CONFIG_STAGES_ID),
      ConfigOf<int32_t>(a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM),
      ConfigOf<uint32_t>(a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME),
      ConfigOf<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING),
      ConfigOf<uint32_t>(a, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION),
      ConfigOf<uint16_t>(a, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID),
      ConfigOf<uint16_t>(a, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID));
}

// The lowest set bit of a reduction-scheme mask (CUBLASLT_REDUCTION_SCHEME_NONE if none).
uint32_t FirstScheme(uint32_t mask) { return mask == 0 ? 0u : (mask & (~mask + 1u)); }

// Owns the cuBLASLt handle, descriptors and timing events of one search.
class Search {
 public:
  Search(cudaStream_t stream, const SearchShape& s, const void* w, const void* x, void* y,
         kernels::cuda::DeviceBuffer& flush)
      : stream_(stream), s_(s), w_(w), x_(x), y_(y), flush_(flush) {}
  ~Search() {
    if (pref_ != nullptr) cublasLtMatmulPreferenceDestroy(pref_);
    for (cublasLtMatrixLayout_t l : {a_, b_, d_})
      if (l != nullptr) cublasLtMatrixLayoutDestroy(l);
    if (desc_ != nullptr) cublasLtMatmulDescDestroy(desc_);
    if (lt_ != nullptr) cublasLtDestroy(lt_);
    if (e0_ != nullptr) cudaEventDestroy(e0_);
    if (e1_ != nullptr) cudaEventDestroy(e1_);
  }

  absl::StatusOr<SearchResult> Run(const std::function<absl::Status()>& run_default,
                                   const std::function<absl::Status()>& run_tuned) {
    RETURN_IF_ERROR(Setup());
    RETURN_IF_ERROR(Collect());
    SearchResult r;
    r.checked = static_cast<int>(cands_.size());
    if (cands_.empty()) return absl::NotFoundError("no cuBLASLt configuration accepts the shape");

    // First pass: kFirstReps cold runs each, within the budget; failures are dropped.
    std::vector<std::pair<float, size_t>> first;
    const auto start = std::chrono::steady_clock::now();
    for (size_t c = 0; c < cands_.size(); ++c) {
      if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() >
          kFirstPassBudgetS) {
        break;
      }
      ++r.timed;
      if (!Launch(cands_[c]).ok()) continue;  // warm-up (loads the kernel's module)
      float best = 1e30f;
      bool ok = true;
      for (int rep = 0; rep < kFirstReps && ok; ++rep) {
        absl::StatusOr<float> ms = TimeOnce([&] { return Launch(cands_[c]); });
        ok = ms.ok();
        if (ok) best = std::min(best, *ms);
      }
      if (ok) first.push_back({best, c});
    }
    cudaGetLastError();  // a failed candidate must not leak its error into later launches
    if (first.empty()) return absl::InternalError("every cuBLASLt configuration failed to run");
    std::sort(first.begin(), first.end());
    first.resize(std::min<size_t>(first.size(), kFinalists));

    // Finalists interleaved; a finalist that fails is dropped.
    std::vector<std::vector<float>> fin(first.size());
    std::vector<bool> alive(first.size(), true);
    for (int rep = 0; rep < kFinalReps; ++rep) {
      for (size_t f = 0; f < first.size(); ++f) {
        if (!alive[f]) continue;
        absl::StatusOr<float> ms = TimeOnce([&] { return Launch(cands_[first[f].second]); });
        if (ms.ok()) {
          fin[f].push_back(*ms);
        } else {
          alive[f] = false;
          cudaGetLastError();
        }
      }
    }
    size_t win = first.size();
    float win_ms = 1e30f;
    for (size_t f = 0; f < first.size(); ++f) {
      if (!alive[f] || fin[f].empty()) continue;
      const float med = Median(fin[f]);
      if (med < win_ms) {
        win_ms = med;
        win = f;
      }
    }
    if (win == first.size()) return absl::InternalError("every finalist failed");

    // The winner against the default and the tuned GEMM, interleaved, same statistic.
    const cublasLtMatmulAlgo_t& best = cands_[first[win].second];
    std::vector<float> t_best, t_default, t_tuned;
    for (int rep = 0; rep < kFinalReps; ++rep) {
      ASSIGN_OR_RETURN(float a, TimeOnce([&] { return Launch(best); }));
      ASSIGN_OR_RETURN(float b, TimeOnce(run_default));
      ASSIGN_OR_RETURN(float c, TimeOnce(run_tuned));
      t_best.push_back(a);
      t_default.push_back(b);
      t_tuned.push_back(c);
    }
    r.best_ms = Median(t_best);
    r.default_ms = Median(t_default);
    r.tuned_ms = Median(t_tuned);
    r.best = Describe(best);
    return r;
  }

 private:
  static float Median(std::vector<float> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  }

  absl::Status Setup() {
    RETURN_IF_ERROR(CublasStatus(cublasLtCreate(&lt_), "cublasLtCreate"));
    RETURN_IF_ERROR(CublasStatus(cublasLtMatmulDescCreate(&desc_, CUBLAS_COMPUTE_32F, CUDA_R_32F),
                                 "MatmulDescCreate"));
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)),
        "MatmulDescSetAttribute"));
    RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulDescSetAttribute(desc_, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)),
        "MatmulDescSetAttribute"));
    RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&a_, CUDA_R_16BF, s_.k, s_.n, s_.k),
                                 "MatrixLayoutCreate"));
    RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&b_, CUDA_R_16BF, s_.k, s_.rows, s_.k),
                                 "MatrixLayoutCreate"));
    RETURN_IF_ERROR(CublasStatus(cublasLtMatrixLayoutCreate(&d_, s_.out, s_.n, s_.rows, s_.n),
                                 "MatrixLayoutCreate"));
    RETURN_IF_ERROR(CublasStatus(cublasLtMatmulPreferenceCreate(&pref_), "MatmulPreferenceCreate"));
    const uint64_t ws = kWorkspace;
    RETURN_IF_ERROR(
        CublasStatus(cublasLtMatmulPreferenceSetAttribute(
                         pref_, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)),
                     "MatmulPreferenceSetAttribute"));
    RETURN_IF_ERROR(workspace_.Allocate(kWorkspace, "GEMM search workspace"));
    RETURN_IF_ERROR(CudaStatus(cudaEventCreate(&e0_), "cudaEventCreate"));
    return CudaStatus(cudaEventCreate(&e1_), "cudaEventCreate");
  }

  // The candidates: best-fit heuristic, heuristic per algorithm id, and each id's sweep.
  absl::Status Collect() {
    RETURN_IF_ERROR(AddHeuristic(nullptr));
    std::vector<int> ids(kMaxAlgoIds);
    int num_ids = 0;
    RETURN_IF_ERROR(CublasStatus(
        cublasLtMatmulAlgoGetIds(lt_, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                                 s_.out, s_.out, kMaxAlgoIds, ids.data(), &num_ids),
        "cublasLtMatmulAlgoGetIds"));
    for (int i = 0; i < num_ids; ++i) {
      cublasLtMatmulAlgo_t algo{};
      if (cublasLtMatmulAlgoInit(lt_, CUBLAS_COMPUTE_32F, CUDA_R_32F, CUDA_R_16BF, CUDA_R_16BF,
                                 s_.out, s_.out, ids[i], &algo) != CUBLAS_STATUS_SUCCESS) {
        continue;
      }
      RETURN_IF_ERROR(AddHeuristic(&algo));
      Sweep(algo);
    }
    std::fprintf(stderr, "gemm_search: %d x %d x %d: %zu configurations from %d algorithm ids\n",
                 s_.rows, s_.k, s_.n, cands_.size(), num_ids);
    return absl::OkStatus();
  }

  // Keeps `algo` if AlgoCheck accepts it within the workspace and it is new (by its bytes).
  bool Offer(const cublasLtMatmulAlgo_t& algo) {
    cublasLtMatmulHeuristicResult_t check{};
    if (cublasLtMatmulAlgoCheck(lt_, desc_, a_, b_, d_, d_, &algo, &check) !=
            CUBLAS_STATUS_SUCCESS ||
        check.workspaceSize > kWorkspace) {
      return false;
    }
    std::string bytes(sizeof(algo.data), '\0');
    std::memcpy(bytes.data(), algo.data, sizeof(algo.data));
    if (!seen_.insert(std::move(bytes)).second) return false;
    cands_.push_back(algo);
    return true;
  }

  // The heuristic's results (limited to `algo`'s id when given).
  absl::Status AddHeuristic(const cublasLtMatmulAlgo_t* algo) {
    const uint32_t mode =
        algo == nullptr ? CUBLASLT_SEARCH_BEST_FIT : CUBLASLT_SEARCH_LIMITED_BY_ALGO_ID;
    RETURN_IF_ERROR(CublasStatus(cublasLtMatmulPreferenceSetAttribute(
                                     pref_, CUBLASLT_MATMUL_PREF_SEARCH_MODE, &mode, sizeof(mode)),
                                 "MatmulPreferenceSetAttribute"));
    std::vector<cublasLtMatmulHeuristicResult_t> res(kAsk);
    if (algo != nullptr) {
      for (cublasLtMatmulHeuristicResult_t& r : res) r.algo = *algo;  // each from AlgoInit
    }
    int found = 0;
    if (cublasLtMatmulAlgoGetHeuristic(lt_, desc_, a_, b_, d_, d_, pref_, kAsk, res.data(),
                                       &found) != CUBLAS_STATUS_SUCCESS) {
      return absl::OkStatus();  // nothing for this shape
    }
    for (int i = 0; i < found; ++i) {
      if (res[i].state == CUBLAS_STATUS_SUCCESS) Offer(res[i].algo);
    }
    return absl::OkStatus();
  }

  // Tiles x stages x split-K (kSplits; the first reduction scheme it supports) x CTA swizzling
  // of one algorithm id, at most kMaxChecksPerAlgo AlgoChecks.
  void Sweep(const cublasLtMatmulAlgo_t& base) {
    std::vector<uint32_t> tiles = CapArray<uint32_t>(base, CUBLASLT_ALGO_CAP_TILE_IDS);
    std::vector<uint32_t> stages = CapArray<uint32_t>(base, CUBLASLT_ALGO_CAP_STAGES_IDS);
    if (tiles.empty()) tiles.push_back(CUBLASLT_MATMUL_TILE_UNDEFINED);
    if (stages.empty()) stages.push_back(CUBLASLT_MATMUL_STAGES_UNDEFINED);
    const bool split_ok = CapScalar<int32_t>(base, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT) != 0;
    const uint32_t scheme =
        FirstScheme(CapScalar<uint32_t>(base, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK));
    const bool swizzle_ok = CapScalar<uint32_t>(base, CUBLASLT_ALGO_CAP_CTA_SWIZZLING_SUPPORT) != 0;
    int checks = 0;
    for (uint32_t tile : tiles) {
      for (uint32_t stage : stages) {
        for (int splits : kSplits) {
          if (splits > 1 && (!split_ok || scheme == 0)) continue;
          for (uint32_t swizzle = 0; swizzle <= (swizzle_ok ? 1u : 0u); ++swizzle) {
            if (++checks > kMaxChecksPerAlgo) return;
            cublasLtMatmulAlgo_t a = base;
            SetConfig<uint32_t>(&a, CUBLASLT_ALGO_CONFIG_TILE_ID, tile);
            SetConfig<uint32_t>(&a, CUBLASLT_ALGO_CONFIG_STAGES_ID, stage);
            SetConfig<int32_t>(&a, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, splits);
            SetConfig<uint32_t>(&a, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME,
                                splits > 1 ? scheme : 0u);
            SetConfig<uint32_t>(&a, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING, swizzle);
            Offer(a);
          }
        }
      }
    }
  }

  absl::Status Launch(const cublasLtMatmulAlgo_t& algo) {
    const float alpha = 1.0f;
    return CublasStatus(cublasLtMatmul(lt_, desc_, &alpha, w_, a_, x_, b_, &s_.beta, y_, d_, y_, d_,
                                       &algo, workspace_.get(), workspace_.bytes(), stream_),
                        "cublasLtMatmul");
  }

  // One run of `launch` alone on a cold L2, in ms.
  absl::StatusOr<float> TimeOnce(const std::function<absl::Status()>& launch) {
    RETURN_IF_ERROR(CudaStatus(
        cudaMemsetAsync(flush_.get(), ++salt_ & 0xff, flush_.bytes(), stream_), "memset"));
    RETURN_IF_ERROR(CudaStatus(cudaEventRecord(e0_, stream_), "cudaEventRecord"));
    RETURN_IF_ERROR(launch());
    RETURN_IF_ERROR(CudaStatus(cudaEventRecord(e1_, stream_), "cudaEventRecord"));
    RETURN_IF_ERROR(CudaStatus(cudaEventSynchronize(e1_), "cudaEventSynchronize"));
    float ms = 0.0f;
    RETURN_IF_ERROR(CudaStatus(cudaEventElapsedTime(&ms, e0_, e1_), "cudaEventElapsedTime"));
    return ms;
  }

  cudaStream_t stream_;
  const SearchShape s_;
  const void* w_;
  const void* x_;
  void* y_;
  kernels::cuda::DeviceBuffer& flush_;
  kernels::cuda::DeviceBuffer workspace_;
  cublasLtHandle_t lt_ = nullptr;
  cublasLtMatmulDesc_t desc_ = nullptr;
  cublasLtMatrixLayout_t a_ = nullptr, b_ = nullptr, d_ = nullptr;
  cublasLtMatmulPreference_t pref_ = nullptr;
  cudaEvent_t e0_ = nullptr, e1_ = nullptr;
  std::vector<cublasLtMatmulAlgo_t> cands_;
  std::set<std::string> seen_;  // the opaque bytes of every candidate kept
  int salt_ = 0;                // the flush's fill byte, varied per run
};

}  // namespace

absl::StatusOr<SearchResult> SearchLtConfigs(cudaStream_t stream, const SearchShape& shape,
                                             const void* w, const void* x, void* y,
                                             kernels::cuda::DeviceBuffer& flush,
                                             const std::function<absl::Status()>& run_default,
                                             const std::function<absl::Status()>& run_tuned) {
  Search search(stream, shape, w, x, y, flush);
  return search.Run(run_default, run_tuned);
}

}  // namespace kitty::bench
