// File: kernels/cuda/kitty_launch.h
// -----------------------------------------------------------------------------
// Launchers of the Kitty CUDA kernels (internal: kitty_kernels.cc validates shapes and calls
// these). CUDA runtime and standard headers only. Launchers return the launch error; they do
// not synchronize.
#ifndef KITTY_KERNELS_CUDA_KITTY_LAUNCH_H_
#define KITTY_KERNELS_CUDA_KITTY_LAUNCH_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/cuda/kitty_params.h"

namespace kitty::kernels::cuda {

// Element type of full-precision storage.
enum class KittyElem : int { kF16 = 0, kBF16 = 1 };

// grid (num_jobs, Hkv). Quantized: K pack per KITTY.md §2/§4; auto: tile copy.
cudaError_t LaunchKittyPackK(const KittyGeometry& g, KittyElem elem, const KittyPackJob* jobs,
                             int num_jobs, cudaStream_t stream);
cudaError_t LaunchKittyPackV(const KittyGeometry& g, KittyElem elem, const KittyPackJob* jobs,
                             int num_jobs, cudaStream_t stream);

KittySplitPlan PlanKittyAttention(const KittyGeometry& g, int num_items, long long max_item_tokens,
                                  int num_sms);

// Stream mode (plan.stream_ctas > 0): the piece table of a batch (items[num_items] and the
// seqs they index, host copies), for plan.stream_plan once uploaded.
std::vector<int32_t> KittyStreamPlanInts(const KittySplitPlan& plan, int num_kv_heads,
                                         const KittyQueryItem* items, int num_items,
                                         const KittySeqDesc* seqs);

// Fused attention (decode and prefill chunks). workspace: plan.workspace_bytes.
cudaError_t LaunchKittyAttention(const KittyGeometry& g, KittyElem elem,
                                 const KittyAttentionBatch& batch, const KittySplitPlan& plan,
                                 void* workspace, cudaStream_t stream,
                                 const KittyQueryGroups& groups);

// Query-tiled prefill attention (kitty_prefill.cu): grid (tiles, Hkv), one CTA per tile of at
// most kPrefillTileRows / g items of one chunk. No split, no workspace.
cudaError_t LaunchKittyPrefillAttention(const KittyGeometry& g, KittyElem elem,
                                        const KittyAttentionBatch& batch,
                                        const KittyQueryGroups& tiles, cudaStream_t stream);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_KITTY_LAUNCH_H_
