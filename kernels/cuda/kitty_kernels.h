// File: kernels/cuda/kitty_kernels.h
// -----------------------------------------------------------------------------
// Host API of the Kitty CUDA kernels (issue 7): K/V page pack job lists and the fused
// decode / prefill-chunk attention over sink + sealed pages + fp tails (KITTY.md §1–§5,
// DESIGN.md §3–§4). Full-precision storage (sink, tails, auto pages, q, k/v of new tokens) is
// fp16 or bf16; quantized pages are byte-identical to kernels/kitty/kv_format.h.
//
// Every function validates shapes and returns a Status; the work is enqueued on `stream`
// (no synchronization). Pointers inside the param structs are device pointers. Compiles
// without CUDA headers.
//
// Numerics (tested in tests/kernels/kitty_cuda_gpu_test.cc):
//   - pack: same fp32 operations as PackKPage/PackVPage -> same bytes.
//   - attention: fp32 logits, online softmax and accumulation; quantized pages run on tensor
//     cores with scale/min folded out of the dequant (K: (q*s).c + q.m with q*s as an fp16
//     hi+lo pair; V: (p*s).c + p.m with p*s in fp16), i.e. exact math on the stored codes and
//     fp16 (scale, min): within ~6e-4 (fp16) / ~3e-3 (bf16) relative of fp32 attention on the
//     unrounded dequant. AttendCpu rounds K^/V^ to fp16 first, which alone moves outputs by up
//     to ~2e-2 on outlier-heavy data (see kitty_cuda_gpu_test.cc). q of a bf16 model must be
//     within the fp16 range.
//   - g = Hq/Hkv <= 8, head_dim 64 or 128.
#ifndef KITTY_KERNELS_CUDA_KITTY_KERNELS_H_
#define KITTY_KERNELS_CUDA_KITTY_KERNELS_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/kitty_params.h"
#include "kernels/dtype.h"
#include "kernels/kitty/kv_format.h"

struct CUstream_st;

namespace kitty::kernels::cuda {

using CudaStream = CUstream_st*;

// True when the CUDA runtime reports at least one device.
bool CudaDeviceAvailable();

// Geometry of `spec` with full-precision dtype `fp` (kFloat16 or kBFloat16). Errors: other
// dtypes, head_dim not 64/128, num_q_heads not a multiple of Hkv or g > 8, W > 128.
absl::StatusOr<KittyGeometry> MakeKittyGeometry(const KvCacheSpec& spec, DType fp, int num_q_heads);

// Seals pages: jobs[num_jobs] in device memory (see KittyPackJob). Quantized modes quantize
// and pack; auto copies the tile. V jobs may shift the V tail after packing.
absl::Status KittyPackK(const KvCacheSpec& spec, DType fp, const KittyPackJob* jobs, int num_jobs,
                        CudaStream stream);
absl::Status KittyPackV(const KvCacheSpec& spec, DType fp, const KittyPackJob* jobs, int num_jobs,
                        CudaStream stream);

// Split plan for `num_items` query items whose cached + new tokens are <= max_item_tokens.
absl::StatusOr<KittySplitPlan> MakeKittyAttentionPlan(const KvCacheSpec& spec, DType fp,
                                                      int num_q_heads, int num_items,
                                                      int64_t max_item_tokens);

// Stream mode (plan.stream_ctas > 0, see KittySplitPlan): the piece table of one batch from
// host copies of its items and the seqs they index; upload it and set plan.stream_plan to its
// device copy (else every launch makes it with one more kernel). Empty when the plan does not
// stream. Errors: an item's seq out of range.
absl::StatusOr<std::vector<int32_t>> KittyStreamPlan(const KittySplitPlan& plan, int num_kv_heads,
                                                     const std::vector<KittyQueryItem>& items,
                                                     const std::vector<KittySeqDesc>& seqs);

// Groups of at most max(1, 8 / g) consecutive items that are consecutive tokens of one
// sequence's prefill chunk (same seq and new_offset, num_new + 1 each); decode items stay
// alone. g = num_q_heads / num_kv_heads. For KittyQueryGroups.
std::vector<KittyQueryGroup> GroupQueryItems(const std::vector<KittyQueryItem>& items, int g);
// The items of a batch split between the two attention kernels: runs of at least `min_run`
// consecutive tokens of one chunk go to `tiles` of up to kPrefillTileRows / g tokens
// (KittyPrefillAttention), every other item to `groups` as GroupQueryItems makes them
// (KittyAttention). Each item is in exactly one of the two.
struct QueryPartition {
  std::vector<KittyQueryGroup> tiles, groups;
};
QueryPartition PartitionQueryItems(const std::vector<KittyQueryItem>& items, int g, int min_run);
// The KittyQueryGroups of `host` (GroupQueryItems' result) uploaded to `device`.
KittyQueryGroups QueryGroupsView(const std::vector<KittyQueryGroup>& host,
                                 const KittyQueryGroup* device);
// Attention of every item of `batch` (decode: one item per sequence with num_new = 1).
// workspace: plan.workspace_bytes of device memory (may be null when 0).
// groups: optional (default: one item per CTA), see KittyQueryGroups.
absl::Status KittyAttention(const KvCacheSpec& spec, DType fp, int num_q_heads,
                            const KittyAttentionBatch& batch, const KittySplitPlan& plan,
                            void* workspace, size_t workspace_bytes, CudaStream stream,
                            const KittyQueryGroups& groups = {});
// Attention of the items in `tiles` (PartitionQueryItems' tiles, uploaded with
// QueryGroupsView) by the query-tiled prefill kernel; other items of `batch` are left alone.
absl::Status KittyPrefillAttention(const KvCacheSpec& spec, DType fp, int num_q_heads,
                                   const KittyAttentionBatch& batch, const KittyQueryGroups& tiles,
                                   CudaStream stream);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_KITTY_KERNELS_H_
