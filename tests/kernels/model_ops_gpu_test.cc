// Tests of kernels/cuda/model_ops (label gpu; the GPU ones skip without a CUDA device):
//   - AppendKvCopySegment numbers each segment's copy blocks (host only);
//   - KvCopySegments: a step's mix of one-row appends and long staging copies (rows 1..300, so
//     segments span several copy blocks and end inside one), two layers, all kv heads, 16-byte
//     aligned rows (head_dim 128: vector path) and rows that are not (head_dim 12: scalar path);
//     the destination must equal a host copy element for element and be untouched elsewhere.
#include "gtest/gtest.h"

#if !defined(KITTY_HAVE_CUDA)
TEST(ModelOpsGpuTest, NoCudaBackend) { GTEST_SKIP() << "built without KITTY_CUDA"; }
#else
#include <cuda_runtime_api.h>

#include <cstdint>
#include <random>
#include <vector>

#include "base/status_macros.h"
#include "kernels/cuda/device_buffer.h"
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

TEST(ModelOpsGpuTest, KvCopySegmentsVectorRows) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckCopies(128);
}

TEST(ModelOpsGpuTest, KvCopySegmentsUnalignedRows) {
  if (!HaveGpu()) GTEST_SKIP() << "no CUDA device";
  CheckCopies(12);
}

}  // namespace
}  // namespace kitty::kernels::cuda
#endif
