// Tests of kernels/cuda/model_ops (label gpu; the GPU ones skip without a CUDA device):
//   - AppendKvCopySegment numbers each segment's copy blocks, GemmTuner's rows buckets (host
//     only);
//   - KvCopySegments: a step's mix of one-row appends and long staging copies (rows 1..300, so
//     segments span several copy blocks and end inside one), two layers, all kv heads, 16-byte
//     aligned rows (head_dim 128: vector path) and rows that are not (head_dim 12: scalar path);
//     the destination must equal a host copy element for element and be untouched elsewhere;
//   - Linear (cuBLAS) against a double reference on seeded random inputs, decode and prefill
//     row counts: fp16/bf16, fp32/half output, beta 0/1, odd n, k up to 9728; nothing past y
//     written; the same through GemmTuner's cuBLASLt algorithms (rows sharing a bucket), and a
//     tuned Linear inside a CUDA graph capture (untuned there; Prepare() first tunes it).
#include "gtest/gtest.h"

#if !defined(KITTY_HAVE_CUDA)
TEST(ModelOpsGpuTest, NoCudaBackend) { GTEST_SKIP() << "built without KITTY_CUDA"; }
#else
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime_api.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/gemm_tuner.h"
#include "kernels/cuda/model_ops.h"
#include "kernels/cuda/model_ops_host.h"

namespace kitty::kernels::cuda {
namespace {

bool HaveGpu() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

void CheckCopies(int head_dim) {
  constexpr int kHeads = 3, kLayers = 2;
  const std::vector<int> rows = {1, 1, 300, 1, 33, 32, 1, 127, 64, 1, 65};
  // src: [layer][head][token][d] with per-segment regions; dst likewise, strides differ.
  std::vector<KvCopySegment> segs;
  int blocks = 0;
  int64_t src_elems = 0, dst_elems = 0;
  std::vector<int64_t> src_off, dst_off;
  for (int r : rows) {
    src_off.push_back(src_elems);
    dst_off.push_back(dst_elems);
    src_elems += int64_t{kLayers} * kHeads * (r + 1) * head_dim;  // one spare row per head
    dst_elems += int64_t{kLayers} * kHeads * (r + 2) * head_dim;
  }
  DeviceBuffer src, dst;
  KITTY_CHECK_OK(src.Allocate(2 * src_elems, "src"));
  KITTY_CHECK_OK(dst.Allocate(2 * dst_elems, "dst"));
  std::vector<uint16_t> hs(src_elems), hd(dst_elems, 0xabcd);
  std::mt19937 g(7);
  for (auto& v : hs) v = static_cast<uint16_t>(g());
  ASSERT_EQ(cudaMemcpy(src.get(), hs.data(), 2 * src_elems, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dst.get(), hd.data(), 2 * dst_elems, cudaMemcpyHostToDevice), cudaSuccess);
  for (size_t i = 0; i < rows.size(); ++i) {
    KvCopySegment s;
    const int r = rows[i];
    s.src = src.as<uint16_t>() + src_off[i];
    s.dst = dst.as<uint16_t>() + dst_off[i] + head_dim;  // skip one row: dst row 0 untouched
    s.src_layer_stride = int64_t{kHeads} * (r + 1) * head_dim;
    s.src_head_stride = int64_t{r + 1} * head_dim;
    s.src_token_stride = head_dim;
    s.dst_layer_stride = int64_t{kHeads} * (r + 2) * head_dim;
    s.dst_head_stride = int64_t{r + 2} * head_dim;
    s.dst_token_stride = head_dim;
    s.rows = r;
    AppendKvCopySegment(&segs, &blocks, s);
  }
  AppendKvCopySegment(&segs, &blocks, KvCopySegment{});  // no rows: not appended
  ASSERT_EQ(segs.size(), rows.size());
  DeviceBuffer d_segs;
  KITTY_CHECK_OK(d_segs.Allocate(segs.size() * sizeof(KvCopySegment), "segs"));
  ASSERT_EQ(cudaMemcpy(d_segs.get(), segs.data(), segs.size() * sizeof(KvCopySegment),
                       cudaMemcpyHostToDevice),
            cudaSuccess);
  for (int l = 0; l < kLayers; ++l) {
    ASSERT_TRUE(KvCopySegments(DType::kBFloat16, d_segs.as<KvCopySegment>(),
                               static_cast<int>(segs.size()), blocks, l, kHeads, head_dim, nullptr)
                    .ok());
  }
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<uint16_t> got(dst_elems);
  ASSERT_EQ(cudaMemcpy(got.data(), dst.get(), 2 * dst_elems, cudaMemcpyDeviceToHost), cudaSuccess);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int r = rows[i];
    for (int l = 0; l < kLayers; ++l) {
      for (int h = 0; h < kHeads; ++h) {
        for (int t = 0; t < r + 2; ++t) {
          for (int d = 0; d < head_dim; ++d) {
            const int64_t di =
                dst_off[i] + (int64_t{l} * kHeads + h) * (r + 2) * head_dim + t * head_dim + d;
            const bool copied = t >= 1 && t <= r;
            const uint16_t want =
                copied ? hs[src_off[i] + (int64_t{l} * kHeads + h) * (r + 1) * head_dim +
                            (t - 1) * head_dim + d]
                       : uint16_t{0xabcd};
            ASSERT_EQ(got[di], want) << "segment " << i << " (rows " << r << ") layer " << l
                                     << " head " << h << " row " << t << " d " << d;
          }
        }
      }
    }
  }
}

TEST(ModelOpsHostTest, AppendKvCopySegmentNumbersBlocks) {
  std::vector<KvCopySegment> segs;
  int blocks = 0;
  for (int rows : {1, 0, 32, 33, 64, -1, 127}) {
    KvCopySegment s;
    s.rows = rows;
    AppendKvCopySegment(&segs, &blocks, s);
  }
  ASSERT_EQ(segs.size(), 5u);  // the empty and negative segments are dropped
  const std::vector<int> block0 = {0, 1, 2, 4, 6};
  for (size_t i = 0; i < segs.size(); ++i) EXPECT_EQ(segs[i].block0, block0[i]) << i;
  EXPECT_EQ(blocks, 6 + 4);  // 127 rows: 4 blocks of 32
}

// GemmTuner's rows buckets: powers of two up to 64, multiples of 64 up to 1024, then of 512;
// every row count lies in a bucket no smaller than itself and buckets never shrink with rows.
TEST(ModelOpsHostTest, GemmTunerRowsBuckets) {
  const std::vector<std::pair<int, int> > cases = {
      {1, 1},     {2, 2},     {3, 4},       {5, 8},       {33, 64},     {64, 64},    {65, 128},
      {267, 320}, {300, 320}, {1024, 1024}, {1025, 1536}, {2048, 2048}, {8191, 8192}};
  for (const auto& [rows, bucket] : cases) EXPECT_EQ(GemmTuner::RowsBucket(rows), bucket) << rows;
  int prev = 0;
  for (int rows = 1; rows <= 10000; ++rows) {
    const int b = GemmTuner::RowsBucket(rows);
    ASSERT_GE(b, rows);
    ASSERT_GE(b, prev);
    prev = b;
  }
}

TEST(ModelOpsGpuTest, KvCopySegmentsVectorRows) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckCopies(128);
}

TEST(ModelOpsGpuTest, KvCopySegmentsUnalignedRows) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckCopies(12);
}

// ---- Linear ---------------------------------------------------------------------------------

// Host half-precision values: bits and their float.
uint16_t HalfBits(float f, DType t) {
  if (t == DType::kBFloat16) return static_cast<__nv_bfloat16_raw>(__float2bfloat16_rn(f)).x;
  return static_cast<__half_raw>(__float2half_rn(f)).x;
}
float HalfValue(uint16_t u, DType t) {
  if (t == DType::kBFloat16) {
    __nv_bfloat16_raw r;
    r.x = u;
    return __bfloat162float(__nv_bfloat16(r));
  }
  __half_raw r;
  r.x = u;
  return __half2float(__half(r));
}

struct LinearRun {
  std::vector<float> y;  // rows * n values (as float), then the guard values
};

// y = x · w^T + beta · y0 on the device through `gemm`; returns y and the guard region.
LinearRun RunLinear(CublasGemm& gemm, DType t, DType out, const std::vector<uint16_t>& x, int rows,
                    int k, const std::vector<uint16_t>& w, int n, const std::vector<float>& y0,
                    float beta, cudaStream_t stream) {
  constexpr int kGuard = 64;
  const size_t osz = out == DType::kFloat32 ? 4 : 2;
  const size_t ny = size_t{1} * rows * n + kGuard;
  DeviceBuffer dx, dw, dy;
  KITTY_CHECK_OK(dx.Allocate(x.size() * 2 + 16, "x"));
  KITTY_CHECK_OK(dw.Allocate(w.size() * 2 + 16, "w"));
  KITTY_CHECK_OK(dy.Allocate(ny * osz, "y"));
  std::vector<uint8_t> hy(ny * osz);
  for (size_t i = 0; i < ny; ++i) {
    const float v = i < y0.size() ? y0[i] : 12345.0f;  // guard
    if (osz == 4) {
      std::memcpy(hy.data() + i * 4, &v, 4);
    } else {
      const uint16_t u = HalfBits(v, t);
      std::memcpy(hy.data() + i * 2, &u, 2);
    }
  }
  KITTY_CHECK(cudaMemcpy(dx.get(), x.data(), x.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK(cudaMemcpy(dw.get(), w.data(), w.size() * 2, cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK(cudaMemcpy(dy.get(), hy.data(), hy.size(), cudaMemcpyHostToDevice) == cudaSuccess);
  KITTY_CHECK_OK(gemm.Linear(t, dx.get(), rows, k, dw.get(), n, out, dy.get(), beta));
  KITTY_CHECK(cudaStreamSynchronize(stream) == cudaSuccess);
  KITTY_CHECK(cudaMemcpy(hy.data(), dy.get(), hy.size(), cudaMemcpyDeviceToHost) == cudaSuccess);
  LinearRun r;
  r.y.resize(ny);
  for (size_t i = 0; i < ny; ++i) {
    if (osz == 4) {
      std::memcpy(&r.y[i], hy.data() + i * 4, 4);
    } else {
      uint16_t u;
      std::memcpy(&u, hy.data() + i * 2, 2);
      r.y[i] = HalfValue(u, t);
    }
  }
  return r;
}

void CheckLinear(GemmTuning tuning, const std::vector<int>& row_counts) {
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  auto blas = CublasGemm::Create(stream, tuning);
  ASSERT_TRUE(blas.ok());
  struct Shape {
    int k, n;
  };
  const std::vector<Shape> shapes = {{8, 1}, {64, 3}, {1000, 129}, {2560, 37}, {9728, 18}, {12, 5}};
  std::mt19937 g(11);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  int checked = 0;
  double worst = 0;
  for (DType t : {DType::kBFloat16, DType::kFloat16}) {
    for (const Shape& sh : shapes) {
      for (int rows : row_counts) {
        std::vector<uint16_t> x(size_t{1} * rows * sh.k), w(size_t{1} * sh.n * sh.k);
        for (auto& v : x) v = HalfBits(u(g), t);
        for (auto& v : w) v = HalfBits(u(g), t);
        for (DType out : {DType::kFloat32, t}) {
          for (float beta : {0.0f, 1.0f}) {
            std::vector<float> y0(size_t{1} * rows * sh.n);
            for (auto& v : y0) v = out == DType::kFloat32 ? u(g) : HalfValue(HalfBits(u(g), t), t);
            const LinearRun got =
                RunLinear(**blas, t, out, x, rows, sh.k, w, sh.n, y0, beta, stream);
            const std::string what = std::string(DTypeName(t)) + " out " +
                                     std::string(DTypeName(out)) + " rows " + std::to_string(rows) +
                                     " k " + std::to_string(sh.k) + " n " + std::to_string(sh.n) +
                                     " beta " + std::to_string(beta);
            for (int r = 0; r < rows; ++r) {
              for (int c = 0; c < sh.n; ++c) {
                const double y_in = beta * y0[size_t{1} * r * sh.n + c];
                double dot = 0, mag = std::fabs(y_in);
                for (int i = 0; i < sh.k; ++i) {
                  const double p = double{HalfValue(x[size_t{1} * r * sh.k + i], t)} *
                                   HalfValue(w[size_t{1} * c * sh.k + i], t);
                  dot += p;
                  mag += std::fabs(p);
                }
                const double ref = y_in + dot;
                const double err = std::fabs(got.y[size_t{1} * r * sh.n + c] - ref);
                // fp32 accumulation; a half output adds roundings of its parts (2^-8 bf16,
                // 2^-11 fp16) x8: cuBLAS's half outputs are not correctly rounded. It rounds
                // partial sums (split-K) to the output type, and a partial of k/s products is
                // ~sqrt(k) |x w|/k even when the result cancels: on the H200 a fp16 k = 9728 row
                // of result 0.077 and sum |x w| 2450 was off by 0.0083 (2026-12-03). A wrong
                // layout, stride or beta is off by the size of a whole partial or more.
                const double half_ulp = out == DType::kFloat32  ? 0.0
                                        : t == DType::kBFloat16 ? 8.0 / 256
                                                                : 8.0 / 2048;
                const double partial = mag / std::sqrt(static_cast<double>(sh.k));
                const double tol =
                    2e-6 * mag + half_ulp * (std::fabs(y_in) + std::fabs(dot) + partial) + 1e-6;
                worst = std::max(worst, err / (mag + 1e-9));
                ASSERT_LE(err, tol) << what << " at (" << r << ", " << c << ")";
                ++checked;
              }
            }
            const float guard =
                out == DType::kFloat32 ? 12345.0f : HalfValue(HalfBits(12345.0f, t), t);
            for (size_t i = size_t{1} * rows * sh.n; i < got.y.size(); ++i) {
              ASSERT_EQ(got.y[i], guard) << what << ": wrote past y";
            }
          }
        }
      }
    }
  }
  std::printf("Linear: %d outputs within tolerance, worst |err| / sum|x w| %.2e\n", checked, worst);
  if (tuning == GemmTuning::kLtOnly) {
    // every key ran a cuBLASLt algorithm where cuBLASLt had one
    EXPECT_GT((*blas)->shapes_lt(), 0);
    std::printf("tuned %lld shapes, %lld on cuBLASLt\n",
                static_cast<long long>((*blas)->shapes_tuned()),
                static_cast<long long>((*blas)->shapes_lt()));
  }
  blas->reset();
  cudaStreamDestroy(stream);
}

TEST(ModelOpsGpuTest, LinearMatchesDoubleReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckLinear(GemmTuning::kOff, {1, 2, 3, 5, 8, 9, 64});
}

// GemmTuner's path: each key's cuBLASLt algorithm (kLtOnly: the fastest cuBLASLt candidate even
// where cublasGemmEx's default is faster, so that the test does not depend on timing), rows
// that share a bucket (267 and 300: bucket 320; 5 and 8: bucket 8) and so reuse its algorithm.
TEST(ModelOpsGpuTest, TunedLinearMatchesDoubleReference) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckLinear(GemmTuning::kLtOnly, {1, 5, 8, 64, 267, 300});
}

// A shape first met while the stream is being captured runs the default (no timing inside a
// capture) and stays untuned; Prepare() before the capture tunes it; both graphs compute y.
TEST(ModelOpsGpuTest, TunedLinearInsideGraphCapture) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  auto blas = CublasGemm::Create(stream, GemmTuning::kLtOnly);
  ASSERT_TRUE(blas.ok());
  constexpr int kRows = 48, kK = 256, kN = 384;
  std::mt19937 g(5);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  const DType t = DType::kBFloat16;
  std::vector<uint16_t> x(kRows * kK), w(kN * kK);
  for (auto& v : x) v = HalfBits(u(g), t);
  for (auto& v : w) v = HalfBits(u(g), t);
  DeviceBuffer dx, dw, dy;
  KITTY_CHECK_OK(dx.Allocate(x.size() * 2, "x"));
  KITTY_CHECK_OK(dw.Allocate(w.size() * 2, "w"));
  KITTY_CHECK_OK(dy.Allocate(size_t{4} * kRows * kN, "y"));
  ASSERT_EQ(cudaMemcpy(dx.get(), x.data(), x.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dw.get(), w.data(), w.size() * 2, cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<double> ref(kRows * kN, 0.0);
  for (int r = 0; r < kRows; ++r)
    for (int c = 0; c < kN; ++c)
      for (int i = 0; i < kK; ++i)
        ref[r * kN + c] += double{HalfValue(x[r * kK + i], t)} * HalfValue(w[c * kK + i], t);
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      KITTY_CHECK_OK(
          (*blas)->Prepare(t, dx.get(), kRows, kK, dw.get(), kN, DType::kFloat32, dy.get()));
      EXPECT_EQ((*blas)->shapes_tuned(), 1);
    }
    ASSERT_EQ(cudaMemset(dy.get(), 0, size_t{4} * kRows * kN), cudaSuccess);
    cudaGraph_t graph = nullptr;
    ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), cudaSuccess);
    const absl::Status st =
        (*blas)->Linear(t, dx.get(), kRows, kK, dw.get(), kN, DType::kFloat32, dy.get());
    ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
    ASSERT_TRUE(st.ok()) << st;
    EXPECT_EQ((*blas)->shapes_tuned(), pass);  // nothing timed inside the capture
    cudaGraphExec_t exec = nullptr;
    ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
    std::vector<float> y(kRows * kN);
    ASSERT_EQ(cudaMemcpy(y.data(), dy.get(), y.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
    for (size_t i = 0; i < y.size(); ++i) {
      ASSERT_NEAR(y[i], ref[i], 1e-3 + 1e-5 * std::fabs(ref[i])) << "pass " << pass << " at " << i;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
  }
  blas->reset();
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace kitty::kernels::cuda
#endif
