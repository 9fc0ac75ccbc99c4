// File: kernels/kitty/kv_cache.cc
// -----------------------------------------------------------------------------
#include "kernels/kitty/kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/status_macros.h"

namespace kitty::kernels {
namespace {

constexpr int kP = KvCacheSpec::kPageTokens;

}  // namespace

SeqKvCounters AdvanceKvCounters(const KvCacheSpec& spec, const SeqKvCounters& before, int n) {
  KITTY_CHECK_GE(n, 0);
  SeqKvCounters c = before;
  const int to_sink = std::max(0, std::min(n, spec.sink_tokens - c.sink_tokens));
  c.sink_tokens += to_sink;
  const int m = n - to_sink;  // tokens past the sink
  // K: seal every time the tail reaches P.
  const int64_t k_total = int64_t{c.k_tail_tokens} + m;
  c.num_k_pages += static_cast<int32_t>(k_total / kP);
  c.k_tail_tokens = static_cast<int32_t>(k_total % kP);
  // V: seal the oldest P every time the tail reaches P + W (leaves W).
  const int64_t cap = spec.v_tail_capacity();
  const int64_t v_total = int64_t{c.v_tail_tokens} + m;
  const int64_t seals = v_total < cap ? 0 : (v_total - cap) / kP + 1;
  c.num_v_pages += static_cast<int32_t>(seals);
  c.v_tail_tokens = static_cast<int32_t>(v_total - kP * seals);
  return c;
}

SeqKvCounters KvCountersForLength(const KvCacheSpec& spec, int64_t num_tokens) {
  SeqKvCounters c;
  c.sink_tokens = static_cast<int32_t>(std::min<int64_t>(num_tokens, spec.sink_tokens));
  const int64_t x = num_tokens - c.sink_tokens;
  c.num_k_pages = static_cast<int32_t>(x / kP);
  c.k_tail_tokens = static_cast<int32_t>(x % kP);
  const int64_t w = spec.v_window_tokens;
  c.num_v_pages = static_cast<int32_t>(x < w ? 0 : (x - w) / kP);
  c.v_tail_tokens = static_cast<int32_t>(x - int64_t{kP} * c.num_v_pages);
  return c;
}

SeqKvCounters AppendKv(const KvCacheSpec& spec, const SeqKvCounters& before,
                       const SeqKvBuffers& buffers, const float* k_new, const float* v_new, int n) {
  const int hkv = spec.num_kv_heads, d_count = spec.head_dim, s = spec.sink_tokens;
  const int k_cap = spec.k_tail_capacity(), v_cap = spec.v_tail_capacity();
  const int w = spec.v_window_tokens;
  const size_t row_bytes = sizeof(float) * d_count;
  SeqKvCounters c = before;
  KITTY_CHECK(c.sink_tokens <= s && c.k_tail_tokens < k_cap && c.v_tail_tokens < v_cap)
      << "inconsistent counters: sink=" << c.sink_tokens << " ck=" << c.k_tail_tokens
      << " cv=" << c.v_tail_tokens;
  for (int i = 0; i < n; ++i) {
    const float* k = k_new + static_cast<int64_t>(i) * hkv * d_count;  // [Hkv][D]
    const float* v = v_new + static_cast<int64_t>(i) * hkv * d_count;  // [Hkv][D]
    if (c.sink_tokens < s) {
      for (int h = 0; h < hkv; ++h) {
        const int64_t dst = (static_cast<int64_t>(h) * s + c.sink_tokens) * d_count;
        std::memcpy(buffers.sink_k + dst, k + h * d_count, row_bytes);
        std::memcpy(buffers.sink_v + dst, v + h * d_count, row_bytes);
      }
      ++c.sink_tokens;
      continue;
    }
    for (int h = 0; h < hkv; ++h) {
      std::memcpy(buffers.k_tail + (static_cast<int64_t>(h) * k_cap + c.k_tail_tokens) * d_count,
                  k + h * d_count, row_bytes);
      std::memcpy(buffers.v_tail + (static_cast<int64_t>(h) * v_cap + c.v_tail_tokens) * d_count,
                  v + h * d_count, row_bytes);
    }
    if (++c.k_tail_tokens == kP) {
      KITTY_CHECK_LT(c.num_k_pages, static_cast<int64_t>(buffers.k_pages.size()))
          << "no K page buffer for the page sealing now";
      PackKPage(spec, buffers.k_tail, int64_t{k_cap} * d_count, buffers.k_pages[c.num_k_pages]);
      ++c.num_k_pages;
      c.k_tail_tokens = 0;
    }
    if (++c.v_tail_tokens == v_cap) {
      KITTY_CHECK_LT(c.num_v_pages, static_cast<int64_t>(buffers.v_pages.size()))
          << "no V page buffer for the page sealing now";
      PackVPage(spec, buffers.v_tail, int64_t{v_cap} * d_count, buffers.v_pages[c.num_v_pages]);
      ++c.num_v_pages;
      for (int h = 0; h < hkv; ++h) {
        float* tail = buffers.v_tail + static_cast<int64_t>(h) * v_cap * d_count;
        std::memmove(tail, tail + static_cast<int64_t>(kP) * d_count, w * row_bytes);
      }
      c.v_tail_tokens = w;
    }
  }
  return c;
}

SeqKvView MakeSeqKvView(const SeqKvCounters& counters, const SeqKvBuffers& buffers) {
  KITTY_CHECK(counters.num_k_pages <= static_cast<int64_t>(buffers.k_pages.size()) &&
              counters.num_v_pages <= static_cast<int64_t>(buffers.v_pages.size()))
      << "fewer page buffers than sealed pages";
  SeqKvView v;
  v.sink_tokens = counters.sink_tokens;
  v.sink_k = buffers.sink_k;
  v.sink_v = buffers.sink_v;
  v.k_pages = absl::Span<const uint8_t* const>(
      const_cast<const uint8_t* const*>(buffers.k_pages.data()), counters.num_k_pages);
  v.v_pages = absl::Span<const uint8_t* const>(
      const_cast<const uint8_t* const*>(buffers.v_pages.data()), counters.num_v_pages);
  v.k_tail_tokens = counters.k_tail_tokens;
  v.k_tail = buffers.k_tail;
  v.v_tail_tokens = counters.v_tail_tokens;
  v.v_tail = buffers.v_tail;
  return v;
}

// Why: a reference, not a fast kernel. Every cached token is materialized in fp32 per kv head
// (pages through DequantKPage/DequantVPage, i.e. exactly the stored fp16 values), then each
// (query token, query head) runs a plain two-pass softmax with fp32 logits. The summation order
// (sink, pages, tail, new tokens) differs from the reference's ring-buffer order only for V
// window tokens, which softmax does not care about beyond rounding.
void AttendCpu(const KvCacheSpec& spec, const SeqKvView& view, int num_q_heads, const float* q,
               const float* k_new, const float* v_new, int n, float scale, float* out) {
  const int hkv = spec.num_kv_heads, d_count = spec.head_dim;
  KITTY_CHECK(num_q_heads > 0 && num_q_heads % hkv == 0)
      << "num_q_heads=" << num_q_heads << " num_kv_heads=" << hkv;
  const int group = num_q_heads / hkv;
  const int64_t cached_k = view.sink_tokens +
                           int64_t{kP} * static_cast<int64_t>(view.k_pages.size()) +
                           view.k_tail_tokens;
  const int64_t cached_v = view.sink_tokens +
                           int64_t{kP} * static_cast<int64_t>(view.v_pages.size()) +
                           view.v_tail_tokens;
  KITTY_CHECK_EQ(cached_k, cached_v) << "K and V token counts differ";
  const int64_t total = cached_k + n;

  // Fills dst [Hkv][total][D] from sink rows, dequantized pages, tail rows and new rows.
  const int64_t page_stride = int64_t{kP} * d_count;
  std::vector<float> page(static_cast<size_t>(hkv) * page_stride);  // [Hkv][P][D]
  auto gather = [&](float* dst, const float* sink, absl::Span<const uint8_t* const> pages,
                    void (*dequant)(const KvCacheSpec&, const uint8_t*, float*), const float* tail,
                    int tail_tokens, int tail_capacity, const float* fresh) {
    // Copies `count` rows [count][D] of every head from src (head h at src + h*src_stride).
    int64_t t = 0;
    auto append_rows = [&](const float* src, int64_t src_stride, int64_t count) {
      for (int h = 0; h < hkv && count > 0; ++h) {
        std::memcpy(dst + (h * total + t) * d_count, src + h * src_stride,
                    sizeof(float) * count * d_count);
      }
      t += count;
    };
    append_rows(sink, int64_t{spec.sink_tokens} * d_count, view.sink_tokens);
    for (const uint8_t* p : pages) {
      dequant(spec, p, page.data());
      append_rows(page.data(), page_stride, kP);
    }
    append_rows(tail, int64_t{tail_capacity} * d_count, tail_tokens);
    for (int i = 0; i < n; ++i) {  // fresh: [n][Hkv][D]
      append_rows(fresh + static_cast<int64_t>(i) * hkv * d_count, d_count, 1);
    }
  };
  std::vector<float> keys(static_cast<size_t>(hkv) * total * d_count);  // [Hkv][total][D]
  std::vector<float> values(keys.size());                               // [Hkv][total][D]
  gather(keys.data(), view.sink_k, view.k_pages, &DequantKPage, view.k_tail, view.k_tail_tokens,
         spec.k_tail_capacity(), k_new);
  gather(values.data(), view.sink_v, view.v_pages, &DequantVPage, view.v_tail, view.v_tail_tokens,
         spec.v_tail_capacity(), v_new);

  const int num_items = n * num_q_heads;
  // Threads only pay off for real work: for a decode step of a small model, waking OpenMP's
  // workers costs far more than the loop (and oversubscribed cores make them spin).
  const bool parallel = static_cast<int64_t>(num_items) * total * d_count > (int64_t{1} << 18);
#pragma omp parallel for schedule(dynamic, 1) if (parallel)
  for (int item = 0; item < num_items; ++item) {
    const int i = item / num_q_heads, hq = item % num_q_heads, h = hq / group;
    const float* qv = q + static_cast<int64_t>(item) * d_count;  // [D]
    float* o = out + static_cast<int64_t>(item) * d_count;       // [D]
    const int64_t len = cached_k + i + 1;                        // causal
    const float* kh = keys.data() + static_cast<int64_t>(h) * total * d_count;
    const float* vh = values.data() + static_cast<int64_t>(h) * total * d_count;
    std::vector<float> logits(len);
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < len; ++j) {
      const float* kr = kh + j * d_count;
      float dot = 0.0f;
      for (int d = 0; d < d_count; ++d) dot += qv[d] * kr[d];
      logits[j] = dot * scale;
      mx = std::max(mx, logits[j]);
    }
    double denom = 0.0;
    for (int64_t j = 0; j < len; ++j) {
      logits[j] = std::exp(logits[j] - mx);
      denom += logits[j];
    }
    const float inv = static_cast<float>(1.0 / denom);
    for (int d = 0; d < d_count; ++d) o[d] = 0.0f;
    for (int64_t j = 0; j < len; ++j) {
      const float p = logits[j] * inv;
      const float* vr = vh + j * d_count;
      for (int d = 0; d < d_count; ++d) o[d] += p * vr[d];
    }
  }
}

}  // namespace kitty::kernels
