// kitty_attention_bench: decode attention time of the Kitty CUDA kernels for Llama-3-8B shapes
// (Hq 32, Hkv 8, D 128, bf16 storage) in every cache mode, with the bytes the kernel must
// read (sealed pages + sink + fp tails + q + new k/v + output write), the achieved bandwidth
// and the measured device-to-device copy bandwidth (bytes read + written) as the roofline.
// Usage: kitty_attention_bench [--iters N] [--mode M]... [--shape BxCTX | BxLO-HI]... [--no-copy]
//        kitty_attention_bench --prefill CxP... [--mode M]...   (prefill chunks: decode kernel's
//        query groups vs the query-tiled prefill kernel)        (prints a markdown table)
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "kernels/cuda/kitty_kernels.h"
#include "kernels/kitty/kv_cache.h"
#include "kernels/kitty/kv_format.h"

namespace kitty::kernels::cuda {
namespace {

constexpr int kP = KvCacheSpec::kPageTokens;
constexpr int kHq = 32, kHkv = 8, kD = 128;
constexpr DType kFp = DType::kBFloat16;

#define CK(expr)                                                               \
  do {                                                                         \
    cudaError_t e_ = (expr);                                                   \
    KITTY_CHECK(e_ == cudaSuccess) << #expr << ": " << cudaGetErrorString(e_); \
  } while (0)

void* Alloc(size_t bytes) {
  void* p = nullptr;
  CK(cudaMalloc(&p, std::max<size_t>(bytes, 16)));
  return p;
}

template <typename U>
U* Upload(const std::vector<U>& v) {
  U* p = static_cast<U*>(Alloc(v.size() * sizeof(U)));
  CK(cudaMemcpy(p, v.data(), v.size() * sizeof(U), cudaMemcpyHostToDevice));
  return p;
}

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = FloatToBFloat16(d(rng));
  return v;
}

float Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

double CopyBandwidth() {
  const size_t bytes = size_t{2} << 30;
  void* a = Alloc(bytes);
  void* b = Alloc(bytes);
  CK(cudaMemset(a, 0x5a, bytes));
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  std::vector<float> ms;
  for (int i = 0; i < 23; ++i) {
    CK(cudaEventRecord(e0));
    CK(cudaMemcpyAsync(b, a, bytes, cudaMemcpyDeviceToDevice));
    CK(cudaEventRecord(e1));
    CK(cudaEventSynchronize(e1));
    float t;
    CK(cudaEventElapsedTime(&t, e0, e1));
    if (i >= 3) ms.push_back(t);
  }
  CK(cudaFree(a));
  CK(cudaFree(b));
  return 2.0 * bytes / (Median(ms) * 1e-3);
}

struct Result {
  double us, bytes;
};

// chunk = 0: one decode token per sequence, sequence s at ctxs[s] cached tokens. chunk > 0: a
// prefill chunk of `chunk` causal tokens per sequence on a cached prefix of ctxs[s] tokens,
// through the decode kernel's query groups (tiled = false) or the query-tiled prefill kernel
// (tiled = true).
Result RunCase(KvCacheMode mode, const std::vector<int>& ctxs, int iters, int chunk = 0,
               bool tiled = false) {
  const int batch = static_cast<int>(ctxs.size());
  const KvCacheSpec spec = *MakeKvCacheSpec(mode, kD, kHkv);
  const KittyGeometry geo = *MakeKittyGeometry(spec, kFp, kHq);
  std::vector<SeqKvCounters> cs;
  for (int ctx : ctxs) cs.push_back(KvCountersForLength(spec, ctx));
  // Bytes one decode step must move: everything cached + q + the new k/v + the output.
  const double fp_row = 2.0 * kD;
  double state_bytes = 0;
  int pages_per_rep = 0;  // K pages of one replica of the batch (at least one per sequence)
  for (const SeqKvCounters& c : cs) {
    state_bytes += kHkv * (2.0 * c.sink_tokens * fp_row + double(c.num_k_pages) * geo.k_head_bytes +
                           double(c.num_v_pages) * geo.v_head_bytes +
                           (c.k_tail_tokens + c.v_tail_tokens) * fp_row + 2 * fp_row) +
                   2.0 * kHq * fp_row;
    pages_per_rep += std::max(c.num_k_pages, 1);
  }
  // Replicas of the whole batch state so that repeated launches do not hit L2 (60 MB).
  const int reps = std::max(1, std::min(16, static_cast<int>(std::ceil(480e6 / state_bytes))));
  const int slots = reps * batch;
  const int64_t num_pages = int64_t{reps} * pages_per_rep;
  uint8_t* kpool = static_cast<uint8_t*>(Alloc(num_pages * geo.k_page_bytes));
  uint8_t* vpool = static_cast<uint8_t*>(Alloc(num_pages * geo.v_page_bytes));
  // Fill pages by packing random tiles (so the quantized pages are real packed data).
  const int tiles = 64;
  uint16_t* src = Upload(RandomBf16(size_t{tiles} * kHkv * kP * kD, 17));
  std::vector<KittyPackJob> kj(num_pages), vj(num_pages);
  for (int64_t p = 0; p < num_pages; ++p) {
    void* s = src + (p % tiles) * kHkv * kP * kD;
    kj[p] = {s, kpool + p * geo.k_page_bytes, int64_t{kP} * kD, kD, 0, 0};
    vj[p] = {s, vpool + p * geo.v_page_bytes, int64_t{kP} * kD, kD, 0, 0};
  }
  KittyPackJob* kj_d = Upload(kj);
  KittyPackJob* vj_d = Upload(vj);
  cudaEvent_t e0, e1;
  CK(cudaEventCreate(&e0));
  CK(cudaEventCreate(&e1));
  CK(cudaEventRecord(e0));
  KITTY_CHECK(KittyPackK(spec, kFp, kj_d, static_cast<int>(num_pages), nullptr).ok());
  KITTY_CHECK(KittyPackV(spec, kFp, vj_d, static_cast<int>(num_pages), nullptr).ok());
  CK(cudaEventRecord(e1));
  CK(cudaEventSynchronize(e1));
  float pack_ms;
  CK(cudaEventElapsedTime(&pack_ms, e0, e1));
  // Sink and tails: a non-zero bf16 pattern (0x3c3c ~ 0.0115); their values do not change timing.
  const size_t sink_elems = size_t{2} * kHkv * spec.sink_tokens * kD;
  const size_t kt_elems = size_t{kHkv} * kP * kD,
               vt_elems = size_t{kHkv} * spec.v_tail_capacity() * kD;
  void* sink = Alloc(2 * sink_elems * slots);
  void* kt = Alloc(2 * kt_elems * slots);
  void* vt = Alloc(2 * vt_elems * slots);
  CK(cudaMemset(sink, 0x3c, 2 * sink_elems * slots));
  CK(cudaMemset(kt, 0x3c, 2 * kt_elems * slots));
  CK(cudaMemset(vt, 0x3c, 2 * vt_elems * slots));
  std::vector<KittySeqDesc> descs(slots);
  std::vector<int32_t> ids(num_pages);
  for (int64_t p = 0; p < num_pages; ++p) ids[p] = static_cast<int32_t>(p);
  std::shuffle(ids.begin(), ids.end(), std::mt19937(3));
  for (int s = 0, offset = 0; s < slots; ++s) {
    const SeqKvCounters& c = cs[s % batch];
    descs[s] = {
        s, c.sink_tokens, c.num_k_pages, c.k_tail_tokens, c.num_v_pages, c.v_tail_tokens, offset,
        0};
    offset += std::max(c.num_k_pages, 1);
  }
  KittySeqDesc* desc_d = Upload(descs);
  int32_t* ids_d = Upload(ids);
  const int per_seq_items = std::max(chunk, 1), nitems = batch * per_seq_items;
  std::vector<KittyQueryItem> items;
  for (int s = 0; s < slots; ++s)
    for (int j = 0; j < per_seq_items; ++j)
      items.push_back({s, j + 1, (s % batch) * per_seq_items, 0});
  KittyQueryItem* items_d = Upload(items);
  uint16_t* q = Upload(RandomBf16(static_cast<size_t>(nitems) * kHq * kD, 5));
  uint16_t* kn = Upload(RandomBf16(static_cast<size_t>(nitems) * kHkv * kD, 6));
  uint16_t* vn = Upload(RandomBf16(static_cast<size_t>(nitems) * kHkv * kD, 7));
  void* out = Alloc(size_t{2} * nitems * kHq * kD);
  const int64_t max_tokens = int64_t{*std::max_element(ctxs.begin(), ctxs.end())} + per_seq_items;
  KittySplitPlan plan = *MakeKittyAttentionPlan(spec, kFp, kHq, nitems, max_tokens);
  void* ws = Alloc(plan.workspace_bytes);
  // Stream mode: the piece table as the engine uploads it (the same for every replica: their
  // items only differ in the seq slot, whose counters are the same).
  const std::vector<int32_t> stream_ints = *KittyStreamPlan(
      plan, kHkv, std::vector<KittyQueryItem>(items.begin(), items.begin() + nitems), descs);
  int32_t* stream_d = stream_ints.empty() || chunk > 0 ? nullptr : Upload(stream_ints);
  plan.stream_plan = stream_d;
  // Prefill: the items of one replica as groups (decode kernel) or tiles (prefill kernel).
  const std::vector<KittyQueryItem> rep0(items.begin(), items.begin() + nitems);
  const QueryPartition part = PartitionQueryItems(rep0, kHq / kHkv, tiled ? 1 : 1 << 30);
  const std::vector<KittyQueryGroup>& gl = tiled ? part.tiles : part.groups;
  KittyQueryGroup* groups_d = chunk > 0 ? Upload(gl) : nullptr;
  KittyQueryGroups gq;
  if (chunk > 0) gq = QueryGroupsView(gl, groups_d);

  std::vector<float> ms;
  for (int i = 0; i < iters + 5; ++i) {
    KittyAttentionBatch b;
    b.pools = {kpool, vpool, sink, kt, vt};
    b.seqs = desc_d;
    b.k_page_ids = ids_d;
    b.v_page_ids = ids_d;
    b.items = items_d + (i % reps) * nitems;
    b.num_items = nitems;
    b.q = q;
    b.k_new = kn;
    b.v_new = vn;
    b.out = out;
    b.scale = 1.0f / std::sqrt(float(kD));
    b.max_item_tokens = max_tokens;
    CK(cudaEventRecord(e0));
    const absl::Status st =
        tiled ? KittyPrefillAttention(spec, kFp, kHq, b, gq, nullptr)
              : KittyAttention(spec, kFp, kHq, b, plan, ws, plan.workspace_bytes, nullptr, gq);
    CK(cudaEventRecord(e1));
    KITTY_CHECK(st.ok()) << st;
    CK(cudaEventSynchronize(e1));
    float t;
    CK(cudaEventElapsedTime(&t, e0, e1));
    if (i >= 5) ms.push_back(t);
  }
  CK(cudaGetLastError());
  std::fprintf(
      stderr,
      "  %s %d seqs up to %lld: replicas %d, splits %d x %d chunks, pack of %lld K+V pages "
      "%.3f ms\n",
      std::string(KvCacheModeName(mode)).c_str(), batch, (long long)max_tokens - 1, reps,
      plan.num_splits, plan.chunks_per_split, (long long)num_pages, pack_ms);
  for (void* p : {(void*)kpool, (void*)vpool, (void*)src, (void*)kj_d, (void*)vj_d, sink, kt, vt,
                  (void*)desc_d, (void*)ids_d, (void*)items_d, (void*)q, (void*)kn, (void*)vn, out,
                  ws, (void*)groups_d, (void*)stream_d})
    if (p != nullptr) CK(cudaFree(p));
  CK(cudaEventDestroy(e0));
  CK(cudaEventDestroy(e1));
  return {Median(ms) * 1e3, state_bytes + 2.0 * nitems * kHq * kD};
}

// A decode batch: `batch` sequences with contexts evenly spread over [lo, hi] (lo = hi: all
// the same), in a fixed shuffled order (a running batch mixes old and new sequences).
struct Shape {
  int batch, lo, hi;
  std::vector<int> Contexts() const {
    std::vector<int> c(batch, lo);
    for (int s = 0; s < batch && batch > 1; ++s)
      c[s] = lo + static_cast<int>(int64_t{hi - lo} * s / (batch - 1));
    std::shuffle(c.begin(), c.end(), std::mt19937(11));
    return c;
  }
  std::string Name() const {  // 64x8K, 267x65-8K
    auto k = [](int x) {
      char b[16];
      std::snprintf(b, sizeof(b), x % 1024 == 0 ? "%dK" : "%d", x % 1024 == 0 ? x / 1024 : x);
      return std::string(b);
    };
    char name[64];
    std::snprintf(name, sizeof(name), "%dx%s%s%s", batch, k(lo).c_str(), hi > lo ? "-" : "",
                  hi > lo ? k(hi).c_str() : "");
    return name;
  }
};

int Main(int argc, char** argv) {
  int iters = 30;
  std::vector<std::string> only_modes;       // --mode NAME (repeatable): default all
  std::vector<Shape> only_shapes;            // --shape BxCTX or BxLO-HI (repeatable)
  bool no_copy = false;                      // --no-copy: skip the copy roofline
  std::vector<std::pair<int, int>> prefill;  // --prefill CxP: prefill table only
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-copy") no_copy = true;
    if (i + 1 >= argc) continue;
    if (a == "--iters") iters = std::atoi(argv[i + 1]);
    if (a == "--mode") only_modes.push_back(argv[i + 1]);
    if (a == "--prefill") {  // CxP: a chunk of C tokens on a cached prefix of P (repeatable)
      int c = 0, p = 0;
      if (std::sscanf(argv[i + 1], "%dx%d", &c, &p) == 2) prefill.push_back({c, p});
    }
    if (a == "--shape") {
      int b = 0, lo = 0, hi = 0;
      const int n = std::sscanf(argv[i + 1], "%dx%d-%d", &b, &lo, &hi);
      if (n < 2 || b <= 0 || lo <= 0 || (n == 3 && hi < lo)) {
        std::fprintf(stderr,
                     "kitty_attention_bench: bad --shape '%s' (want BxCTX or BxLO-HI, "
                     "B, CTX > 0, LO <= HI)\n",
                     argv[i + 1]);
        return 2;
      }
      only_shapes.push_back({b, lo, n == 3 ? hi : lo});
    }
  }
  if (!CudaDeviceAvailable()) {
    std::printf("no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  const double copy_bw = no_copy ? 4228e9 : CopyBandwidth();  // --no-copy: last measured value
  std::printf("CTAs/SM target: %s\n", std::getenv("KITTY_ATTN_CTAS_PER_SM")
                                          ? std::getenv("KITTY_ATTN_CTAS_PER_SM")
                                          : "default");
  std::printf("device: %s, %d SMs; D2D copy bandwidth (read+write) %.0f GB/s\n", prop.name,
              prop.multiProcessorCount, copy_bw / 1e9);
  std::vector<KvCacheMode> modes;  // --mode filter, in table order
  for (KvCacheMode mode : {KvCacheMode::kAuto, KvCacheMode::kKivi2, KvCacheMode::kKitty,
                           KvCacheMode::kKittyPro, KvCacheMode::kK4V2}) {
    if (only_modes.empty() || std::find(only_modes.begin(), only_modes.end(),
                                        std::string(KvCacheModeName(mode))) != only_modes.end())
      modes.push_back(mode);
  }
  if (!prefill.empty()) {
    // Causal attention FLOPs of a chunk: 4 D Hq per (query token, visible key).
    std::printf(
        "| mode | chunk on prefix | decode kernel, groups (us) | prefill tiles (us) | "
        "speedup | tiles TFLOP/s |\n|---|---|---|---|---|---|\n");
    for (KvCacheMode mode : modes) {
      const std::string mname(KvCacheModeName(mode));
      for (auto [c, p] : prefill) {
        const Result grouped = RunCase(mode, {p}, iters, c, false);
        const Result tiles = RunCase(mode, {p}, iters, c, true);
        const double flops = 4.0 * kD * kHq * (double(c) * p + 0.5 * double(c) * (c + 1));
        std::printf("| %s | %d on %d | %.1f | %.1f | %.2fx | %.1f |\n", mname.c_str(), c, p,
                    grouped.us, tiles.us, grouped.us / tiles.us, flops / (tiles.us * 1e-6) / 1e12);
        std::fflush(stdout);
      }
    }
    return 0;
  }
  std::printf("| mode | batch x ctx | time (us) | bytes read (MB) | GB/s | %% of copy |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::vector<Shape> shapes = {{1, 8192, 8192},  {8, 8192, 8192},  {16, 8192, 8192},
                               {32, 8192, 8192}, {64, 8192, 8192}, {8, 32768, 32768}};
  if (!only_shapes.empty()) shapes = only_shapes;
  for (KvCacheMode mode : modes) {
    for (const Shape& sh : shapes) {
      const Result r = RunCase(mode, sh.Contexts(), iters);
      const double bw = r.bytes / (r.us * 1e-6);
      std::printf("| %s | %s | %.1f | %.1f | %.0f | %.0f%% |\n",
                  std::string(KvCacheModeName(mode)).c_str(), sh.Name().c_str(), r.us,
                  r.bytes / 1e6, bw / 1e9, 100.0 * bw / copy_bw);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace kitty::kernels::cuda

int main(int argc, char** argv) { return kitty::kernels::cuda::Main(argc, argv); }
