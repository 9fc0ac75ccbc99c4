// File: kernels/cuda/kitty_kernels.cc
// -----------------------------------------------------------------------------
#include "kernels/cuda/kitty_kernels.h"

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/kitty_launch.h"

namespace kitty::kernels::cuda {
namespace {

constexpr int kP = KvCacheSpec::kPageTokens;

absl::StatusOr<KittyElem> ElemOf(DType fp) {
  if (fp == DType::kFloat16) return KittyElem::kF16;
  if (fp == DType::kBFloat16) return KittyElem::kBF16;
  return absl::InvalidArgumentError(
      absl::StrCat("Kitty CUDA kernels store fp16 or bf16, got ", std::string(DTypeName(fp))));
}

absl::StatusOr<int> NumSms() {
  int device = 0, sms = 0;
  RETURN_IF_ERROR(CudaStatus(cudaGetDevice(&device), "cudaGetDevice"));
  RETURN_IF_ERROR(CudaStatus(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device),
                             "cudaDeviceGetAttribute"));
  return sms;
}

absl::Status CheckJobs(const KittyPackJob* jobs, int num_jobs) {
  if (num_jobs < 0) return absl::InvalidArgumentError("num_jobs must be >= 0");
  if (num_jobs > 0 && jobs == nullptr) return absl::InvalidArgumentError("null job list");
  return absl::OkStatus();
}

}  // namespace

bool CudaDeviceAvailable() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no device" error
    return false;
  }
  return n > 0;
}

absl::StatusOr<KittyGeometry> MakeKittyGeometry(const KvCacheSpec& spec, DType fp,
                                                int num_q_heads) {
  ASSIGN_OR_RETURN(KittyElem elem, ElemOf(fp));
  (void)elem;
  if (spec.head_dim != 64 && spec.head_dim != 128) {
    return absl::InvalidArgumentError(
        absl::StrCat("Kitty CUDA kernels support head_dim 64 and 128, got ", spec.head_dim));
  }
  if (spec.num_kv_heads <= 0 || num_q_heads <= 0 || num_q_heads % spec.num_kv_heads != 0 ||
      num_q_heads / spec.num_kv_heads > 8) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need Hq % Hkv == 0 and Hq/Hkv <= 8, got Hq=", num_q_heads, " Hkv=", spec.num_kv_heads));
  }
  if (spec.v_window_tokens > kP || spec.sink_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("V window must be <= 128, got ", spec.v_window_tokens));
  }
  KittyGeometry g;
  g.head_dim = spec.head_dim;
  g.num_kv_heads = spec.num_kv_heads;
  g.num_q_heads = num_q_heads;
  g.sink_capacity = spec.sink_tokens;
  g.v_tail_capacity = spec.v_tail_capacity();
  g.boost_channels = spec.boost_channels;
  g.quantized = spec.quantized() ? 1 : 0;
  if (spec.quantized()) {
    const KHeadLayout k = GetKHeadLayout(spec);
    const VHeadLayout v = GetVHeadLayout(spec);
    g.k_head_bytes = static_cast<int32_t>(k.head_bytes);
    g.v_head_bytes = static_cast<int32_t>(v.head_bytes);
    g.k_sparse_offset = static_cast<int32_t>(k.sparse_offset);
    g.k_idx_offset = static_cast<int32_t>(k.idx_offset);
    g.k_meta_offset = static_cast<int32_t>(k.meta_offset);
    g.v_meta_offset = static_cast<int32_t>(v.meta_offset);
  } else {
    g.k_head_bytes = g.v_head_bytes = static_cast<int32_t>(kP * spec.head_dim * DTypeSize(fp));
  }
  g.k_page_bytes = int64_t{g.k_head_bytes} * spec.num_kv_heads;
  g.v_page_bytes = int64_t{g.v_head_bytes} * spec.num_kv_heads;
  return g;
}

absl::Status KittyPackK(const KvCacheSpec& spec, DType fp, const KittyPackJob* jobs, int num_jobs,
                        CudaStream stream) {
  ASSIGN_OR_RETURN(KittyElem elem, ElemOf(fp));
  RETURN_IF_ERROR(CheckJobs(jobs, num_jobs));
  // Pack kernels need no query heads; Hq = Hkv passes the geometry checks.
  ASSIGN_OR_RETURN(KittyGeometry g, MakeKittyGeometry(spec, fp, spec.num_kv_heads));
  return CudaStatus(LaunchKittyPackK(g, elem, jobs, num_jobs, stream), "KittyPackK");
}

absl::Status KittyPackV(const KvCacheSpec& spec, DType fp, const KittyPackJob* jobs, int num_jobs,
                        CudaStream stream) {
  ASSIGN_OR_RETURN(KittyElem elem, ElemOf(fp));
  RETURN_IF_ERROR(CheckJobs(jobs, num_jobs));
  ASSIGN_OR_RETURN(KittyGeometry g, MakeKittyGeometry(spec, fp, spec.num_kv_heads));
  return CudaStatus(LaunchKittyPackV(g, elem, jobs, num_jobs, stream), "KittyPackV");
}

absl::StatusOr<KittySplitPlan> MakeKittyAttentionPlan(const KvCacheSpec& spec, DType fp,
                                                      int num_q_heads, int num_items,
                                                      int64_t max_item_tokens) {
  ASSIGN_OR_RETURN(KittyGeometry g, MakeKittyGeometry(spec, fp, num_q_heads));
  if (num_items < 0 || max_item_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad plan: items=", num_items, " max_item_tokens=", max_item_tokens));
  }
  ASSIGN_OR_RETURN(int sms, NumSms());
  return PlanKittyAttention(g, num_items, max_item_tokens, sms);
}

absl::StatusOr<std::vector<int32_t>> KittyStreamPlan(const KittySplitPlan& plan, int num_kv_heads,
                                                     const std::vector<KittyQueryItem>& items,
                                                     const std::vector<KittySeqDesc>& seqs) {
  for (const KittyQueryItem& it : items) {
    if (it.seq < 0 || it.seq >= static_cast<int>(seqs.size())) {
      return absl::InvalidArgumentError(absl::StrCat("KittyStreamPlan: item seq ", it.seq,
                                                     " out of range [0, ", seqs.size(), ")"));
    }
  }
  return KittyStreamPlanInts(plan, num_kv_heads, items.data(), static_cast<int>(items.size()),
                             seqs.data());
}

QueryPartition PartitionQueryItems(const std::vector<KittyQueryItem>& items, int g, int min_run) {
  g = std::max(g, 1);
  const int group_cap = std::max(1, 8 / g), tile_cap = std::max(1, kPrefillTileRows / g);
  QueryPartition part;
  const int n = static_cast<int>(items.size());
  for (int a = 0; a < n;) {
    int b = a + 1;  // [a, b): consecutive tokens of one chunk
    while (b < n && items[b].seq == items[b - 1].seq &&
           items[b].new_offset == items[b - 1].new_offset &&
           items[b].num_new == items[b - 1].num_new + 1) {
      ++b;
    }
    const bool tiled = b - a >= min_run;
    std::vector<KittyQueryGroup>& out = tiled ? part.tiles : part.groups;
    const int cap = tiled ? tile_cap : group_cap;
    for (int i = a; i < b; i += cap) out.push_back({i, std::min(cap, b - i)});
    a = b;
  }
  return part;
}

std::vector<KittyQueryGroup> GroupQueryItems(const std::vector<KittyQueryItem>& items, int g) {
  return PartitionQueryItems(items, g, std::numeric_limits<int>::max()).groups;
}

KittyQueryGroups QueryGroupsView(const std::vector<KittyQueryGroup>& host,
                                 const KittyQueryGroup* device) {
  KittyQueryGroups v;
  v.groups = device;
  v.num_groups = static_cast<int32_t>(host.size());
  for (const KittyQueryGroup& gr : host)
    v.max_group_items = std::max(v.max_group_items, gr.num_items);
  return v;
}

static absl::Status CheckBatchPointers(const KittyAttentionBatch& batch, absl::string_view who) {
  if (batch.items == nullptr || batch.seqs == nullptr || batch.q == nullptr ||
      batch.k_new == nullptr || batch.v_new == nullptr || batch.out == nullptr ||
      batch.pools.sink == nullptr || batch.pools.k_tail == nullptr ||
      batch.pools.v_tail == nullptr || batch.k_page_ids == nullptr || batch.v_page_ids == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(who, ": null pointer in batch"));
  }
  // The kernels read q and the new K / V rows as 16-byte vectors (rows of D = 64 or 128 halves).
  for (const void* p : {batch.q, batch.k_new, batch.v_new}) {
    if (reinterpret_cast<uintptr_t>(p) % 16 != 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, ": q, k_new and v_new must be 16-byte aligned"));
    }
  }
  return absl::OkStatus();
}

absl::Status KittyAttention(const KvCacheSpec& spec, DType fp, int num_q_heads,
                            const KittyAttentionBatch& batch, const KittySplitPlan& plan,
                            void* workspace, size_t workspace_bytes, CudaStream stream,
                            const KittyQueryGroups& groups) {
  ASSIGN_OR_RETURN(KittyElem elem, ElemOf(fp));
  ASSIGN_OR_RETURN(KittyGeometry g, MakeKittyGeometry(spec, fp, num_q_heads));
  if (batch.num_items < 0) return absl::InvalidArgumentError("num_items must be >= 0");
  if (batch.num_items == 0) return absl::OkStatus();
  RETURN_IF_ERROR(CheckBatchPointers(batch, "KittyAttention"));
  if (groups.groups != nullptr &&
      (groups.num_groups < 1 || groups.num_groups > batch.num_items || groups.max_group_items < 1 ||
       groups.max_group_items * (num_q_heads / spec.num_kv_heads) > 8)) {
    return absl::InvalidArgumentError(
        absl::StrCat("KittyAttention: ", groups.num_groups, " query groups of up to ",
                     groups.max_group_items, " items for ", batch.num_items,
                     " items; at most 8 query heads per group (GroupQueryItems)"));
  }
  if (plan.num_splits < 1 || plan.chunks_per_split < 1) {
    return absl::InvalidArgumentError("KittyAttention: invalid split plan");
  }
  if (plan.fp_parts != 1 && plan.fp_parts != 2 && plan.fp_parts != 4 && plan.fp_parts != 8) {
    return absl::InvalidArgumentError(
        absl::StrCat("KittyAttention: fp_parts ", plan.fp_parts, " is not 1, 2, 4 or 8"));
  }
  const int64_t covered = int64_t{plan.num_splits} * plan.chunks_per_split;
  if (covered < KittyPlanUnits(batch.max_item_tokens, plan.fp_parts)) {
    return absl::InvalidArgumentError(
        absl::StrCat("split plan covers ", covered, " chunks, fewer than max_item_tokens=",
                     batch.max_item_tokens, " needs; make the plan with the same bound"));
  }
  if (plan.workspace_bytes > workspace_bytes || (plan.workspace_bytes > 0 && !workspace)) {
    return absl::InvalidArgumentError(absl::StrCat("workspace of ", workspace_bytes,
                                                   " bytes, plan needs ", plan.workspace_bytes));
  }
  return CudaStatus(LaunchKittyAttention(g, elem, batch, plan, workspace, stream, groups),
                    "KittyAttention");
}

absl::Status KittyPrefillAttention(const KvCacheSpec& spec, DType fp, int num_q_heads,
                                   const KittyAttentionBatch& batch, const KittyQueryGroups& tiles,
                                   CudaStream stream) {
  ASSIGN_OR_RETURN(KittyElem elem, ElemOf(fp));
  ASSIGN_OR_RETURN(KittyGeometry g, MakeKittyGeometry(spec, fp, num_q_heads));
  if (tiles.num_groups == 0) return absl::OkStatus();
  RETURN_IF_ERROR(CheckBatchPointers(batch, "KittyPrefillAttention"));
  const int gq = num_q_heads / spec.num_kv_heads;
  if (tiles.groups == nullptr || tiles.num_groups < 0 || tiles.num_groups > batch.num_items ||
      tiles.max_group_items < 1 || tiles.max_group_items * gq > kPrefillTileRows) {
    return absl::InvalidArgumentError(
        absl::StrCat("KittyPrefillAttention: ", tiles.num_groups, " tiles of up to ",
                     tiles.max_group_items, " items for ", batch.num_items, " items; at most ",
                     kPrefillTileRows, " query rows per tile (PartitionQueryItems)"));
  }
  return CudaStatus(LaunchKittyPrefillAttention(g, elem, batch, tiles, stream),
                    "KittyPrefillAttention");
}

}  // namespace kitty::kernels::cuda
