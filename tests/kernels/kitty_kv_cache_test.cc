// Tests for kernels/kitty/kv_cache.h: bookkeeping against the KITTY.md §1.2 closed forms
// (§8.5), page sealing steps, path independence (§8.6) and attention over mixed storage
// (§8.7).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "base/status_macros.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kitty/kv_cache.h"

namespace kitty::kernels {
namespace {

constexpr int kP = KvCacheSpec::kPageTokens;

KvCacheSpec Spec(KvCacheMode mode, int d, int hkv, int sink = -1) {
  absl::StatusOr<KvCacheSpec> spec = MakeKvCacheSpec(mode, d, hkv, sink);
  KITTY_CHECK(spec.ok()) << spec.status();
  return *spec;
}

std::vector<float> RandomNormal(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

// Owns the buffers of one (sequence, layer) with room for `max_tokens` tokens.
class SeqState {
 public:
  SeqState(const KvCacheSpec& spec, int max_tokens) : spec_(spec) {
    const size_t row = spec.head_dim, hkv = spec.num_kv_heads;
    sink_k_.assign(hkv * spec.sink_tokens * row, 0.0f);
    sink_v_.assign(sink_k_.size(), 0.0f);
    k_tail_.assign(hkv * spec.k_tail_capacity() * row, 0.0f);
    v_tail_.assign(hkv * spec.v_tail_capacity() * row, 0.0f);
    const int max_pages = max_tokens / kP + 1;
    k_store_.assign(max_pages, std::vector<uint8_t>(KPageBytes(spec), kUntouched));
    v_store_.assign(max_pages, std::vector<uint8_t>(VPageBytes(spec), kUntouched));
    for (auto& p : k_store_) k_ptrs_.push_back(p.data());
    for (auto& p : v_store_) v_ptrs_.push_back(p.data());
  }
  static constexpr uint8_t kUntouched = 0xab;

  SeqKvBuffers buffers() {
    return {sink_k_.data(), sink_v_.data(), k_tail_.data(), v_tail_.data(), k_ptrs_, v_ptrs_};
  }
  SeqKvView view() { return MakeSeqKvView(counters, buffers()); }
  // Appends tokens [first, first+n) of the stream k/v ([L][Hkv][D]).
  void Append(const std::vector<float>& k, const std::vector<float>& v, int64_t first, int n) {
    const int64_t off = first * spec_.num_kv_heads * spec_.head_dim;
    counters = AppendKv(spec_, counters, buffers(), k.data() + off, v.data() + off, n);
  }
  const std::vector<uint8_t>& k_page(int i) const { return k_store_[i]; }
  const std::vector<uint8_t>& v_page(int i) const { return v_store_[i]; }

  SeqKvCounters counters;

 private:
  KvCacheSpec spec_;
  std::vector<float> sink_k_, sink_v_, k_tail_, v_tail_;
  std::vector<std::vector<uint8_t>> k_store_, v_store_;
  std::vector<uint8_t*> k_ptrs_, v_ptrs_;
};

// KITTY.md §1.2, written out independently of the implementation.
void ExpectClosedForm(const KvCacheSpec& s, const SeqKvCounters& c, int64_t len) {
  SCOPED_TRACE(::testing::Message() << "L=" << len);
  const int64_t sink = std::min<int64_t>(len, s.sink_tokens);
  const int64_t x = len - sink;
  EXPECT_EQ(c.sink_tokens, sink);
  EXPECT_EQ(c.num_k_pages, x / kP);
  EXPECT_EQ(c.k_tail_tokens, x % kP);
  if (s.quantized()) {
    const int64_t nloc = std::min<int64_t>(kP, x);
    EXPECT_EQ(c.num_v_pages, (x - nloc) / kP);
    EXPECT_EQ(c.v_tail_tokens, nloc + (x - nloc) % kP);  // Q-buffer + window
    EXPECT_TRUE(c.num_k_pages - c.num_v_pages == 0 || c.num_k_pages - c.num_v_pages == 1);
    if (x >= kP) {
      EXPECT_EQ(c.num_k_pages, c.num_v_pages + 1);
      EXPECT_EQ(c.v_tail_tokens, c.k_tail_tokens + kP);
    }
  } else {
    EXPECT_EQ(c.num_v_pages, c.num_k_pages);
    EXPECT_EQ(c.v_tail_tokens, c.k_tail_tokens);
  }
  EXPECT_EQ(c.num_tokens(), len);
  EXPECT_EQ(c, KvCountersForLength(s, len));
}

// ---------------------------------------------------------------------------------------
// §8.5 bookkeeping.

TEST(KvBookkeepingTest, CountersFollowClosedFormAfterPrefillAndDecode) {
  for (KvCacheMode mode : {KvCacheMode::kAuto, KvCacheMode::kKivi2, KvCacheMode::kKittyPro}) {
    for (int sink : {32, 0, 4}) {
      const KvCacheSpec s = Spec(mode, 8, 2, sink);
      for (int rel : {-32, -31, -1, 0, 1, 127, 128, 129, 255, 256, 257, 300}) {
        const int l0 = s.sink_tokens + rel;
        if (l0 < 0) continue;
        SCOPED_TRACE(::testing::Message()
                     << KvCacheModeName(mode) << " S=" << sink << " L0=" << l0);
        constexpr int kDecode = 300;
        const std::vector<float> k = RandomNormal((l0 + kDecode) * 16, 1);
        const std::vector<float> v = RandomNormal((l0 + kDecode) * 16, 2);
        SeqState st(s, l0 + kDecode);
        st.Append(k, v, 0, l0);
        ExpectClosedForm(s, st.counters, l0);
        EXPECT_EQ(st.counters, AdvanceKvCounters(s, {}, l0));
        for (int i = 0; i < kDecode; ++i) {
          const SeqKvCounters before = st.counters;
          st.Append(k, v, l0 + i, 1);
          const int64_t len = l0 + i + 1;
          ExpectClosedForm(s, st.counters, len);
          EXPECT_EQ(st.counters, AdvanceKvCounters(s, before, 1));
          // Sealing steps (§1.4): K page when L−S hits a multiple of 128; V page 128 later
          // (quantized) or together with K (auto).
          const int64_t x = len - s.sink_tokens;
          const bool k_seal = x > 0 && x % kP == 0;
          const bool v_seal = s.quantized() ? (x >= 2 * kP && x % kP == 0) : k_seal;
          EXPECT_EQ(st.counters.num_k_pages - before.num_k_pages, k_seal ? 1 : 0);
          EXPECT_EQ(st.counters.num_v_pages - before.num_v_pages, v_seal ? 1 : 0);
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
}

TEST(KvBookkeepingTest, AdvanceMatchesAppendForRandomChunks) {
  std::mt19937 rng(3);
  for (KvCacheMode mode : {KvCacheMode::kAuto, KvCacheMode::kKitty}) {
    const KvCacheSpec s = Spec(mode, 4, 1);
    const std::vector<float> k = RandomNormal(3000 * 4, 4), v = RandomNormal(3000 * 4, 5);
    SeqState st(s, 3000);
    SeqKvCounters mirror;
    int64_t len = 0;
    while (len < 2600) {
      const int n = rng() % 3 == 0 ? static_cast<int>(rng() % 400) : static_cast<int>(rng() % 3);
      st.Append(k, v, len, n);
      mirror = AdvanceKvCounters(s, mirror, n);
      len += n;
      ASSERT_EQ(st.counters, mirror) << "L=" << len;
      ExpectClosedForm(s, st.counters, len);
    }
  }
}

TEST(KvBookkeepingTest, PagesSealOnlyWhenComplete) {
  const KvCacheSpec s = Spec(KvCacheMode::kKittyPro, 8, 2);
  const int len = s.sink_tokens + 3 * kP;
  const std::vector<float> k = RandomNormal(len * 16, 6), v = RandomNormal(len * 16, 7);
  SeqState st(s, len);
  const std::vector<uint8_t> untouched(KPageBytes(s), SeqState::kUntouched);
  st.Append(k, v, 0, s.sink_tokens + kP - 1);
  EXPECT_EQ(st.k_page(0), untouched);
  st.Append(k, v, s.sink_tokens + kP - 1, 1);
  EXPECT_NE(st.k_page(0), untouched);
  st.Append(k, v, s.sink_tokens + kP, kP - 1);
  EXPECT_EQ(st.v_page(0), std::vector<uint8_t>(VPageBytes(s), SeqState::kUntouched));
  EXPECT_EQ(st.k_page(1), untouched);
  st.Append(k, v, s.sink_tokens + 2 * kP - 1, 1);
  EXPECT_NE(st.k_page(1), untouched);
  EXPECT_NE(st.v_page(0), std::vector<uint8_t>(VPageBytes(s), SeqState::kUntouched));
}

// ---------------------------------------------------------------------------------------
// §8.6 path independence: page i's bytes are PackXPage of tokens [S+128i, S+128(i+1)).

TEST(KvPathIndependenceTest, PrefillSplitDoesNotChangePages) {
  for (KvCacheMode mode : {KvCacheMode::kKivi2, KvCacheMode::kKitty, KvCacheMode::kKittyPro,
                           KvCacheMode::kK4V2, KvCacheMode::kAuto}) {
    const KvCacheSpec s = Spec(mode, 16, 2);
    const int hd = 2 * 16;
    const int len = s.sink_tokens + 4 * kP + 50;
    const std::vector<float> k = RandomNormal(len * hd, 8), v = RandomNormal(len * hd, 9);
    std::mt19937 rng(10);
    std::vector<SeqState> runs;
    for (int l0 : {0, 5, s.sink_tokens, s.sink_tokens + 127, s.sink_tokens + 128,
                   s.sink_tokens + 256, s.sink_tokens + 300, len}) {
      SeqState st(s, len);
      st.Append(k, v, 0, l0);
      int64_t done = l0;
      while (done < len) {  // decode steps and random chunks
        const int64_t chunk = rng() % 4 == 0 ? rng() % 200 : 1;
        const int n = static_cast<int>(std::min<int64_t>(len - done, chunk));
        st.Append(k, v, done, n);
        done += n;
      }
      runs.push_back(std::move(st));
    }
    // Expected pages, built from the token stream ([L][Hkv][D]) via a [Hkv][128][D] tile.
    const SeqKvCounters& c = runs[0].counters;
    std::vector<float> tile(hd * kP);
    for (int i = 0; i < c.num_k_pages; ++i) {
      for (int kv = 0; kv < 2; ++kv) {
        const std::vector<float>& src = kv == 0 ? k : v;
        if (kv == 1 && i >= c.num_v_pages) continue;
        for (int h = 0; h < 2; ++h) {
          for (int t = 0; t < kP; ++t) {
            std::memcpy(&tile[(h * kP + t) * 16], &src[((s.sink_tokens + i * kP + t) * 2 + h) * 16],
                        16 * sizeof(float));
          }
        }
        std::vector<uint8_t> expect(kv == 0 ? KPageBytes(s) : VPageBytes(s));
        if (kv == 0) {
          PackKPage(s, tile.data(), kP * 16, expect.data());
        } else {
          PackVPage(s, tile.data(), kP * 16, expect.data());
        }
        for (const SeqState& st : runs) {
          ASSERT_EQ(st.counters, c);
          ASSERT_EQ(kv == 0 ? st.k_page(i) : st.v_page(i), expect)
              << KvCacheModeName(mode) << (kv == 0 ? " K" : " V") << " page " << i;
        }
      }
    }
    EXPECT_EQ(c.num_k_pages, 4);
    EXPECT_EQ(c.num_v_pages, s.quantized() ? 3 : 4);
  }
}

// ---------------------------------------------------------------------------------------
// §8.7 attention.

// Dense attention in double over explicit per-token keys/values ([T][Hkv][D]), causal for
// the last n tokens (queries q [n][Hq][D]).
std::vector<float> DenseAttention(const std::vector<float>& keys, const std::vector<float>& values,
                                  int64_t total, int hkv, int d, const std::vector<float>& q,
                                  int hq, int n, float scale) {
  std::vector<float> out(static_cast<size_t>(n) * hq * d);
  const int g = hq / hkv;
  for (int i = 0; i < n; ++i) {
    const int64_t len = total - n + i + 1;
    for (int qh = 0; qh < hq; ++qh) {
      const int h = qh / g;
      const float* qv = &q[(static_cast<size_t>(i) * hq + qh) * d];
      std::vector<double> logit(len);
      double mx = -1e300;
      for (int64_t j = 0; j < len; ++j) {
        double dot = 0;
        for (int e = 0; e < d; ++e) dot += double{qv[e]} * keys[(j * hkv + h) * d + e];
        logit[j] = dot * scale;
        mx = std::max(mx, logit[j]);
      }
      double denom = 0;
      for (double& l : logit) denom += (l = std::exp(l - mx));
      for (int e = 0; e < d; ++e) {
        double acc = 0;
        for (int64_t j = 0; j < len; ++j) acc += logit[j] * values[(j * hkv + h) * d + e];
        out[(static_cast<size_t>(i) * hq + qh) * d + e] = static_cast<float>(acc / denom);
      }
    }
  }
  return out;
}

// Reference K̂/V̂ of a sequence of `cached` tokens: tokens in sealed pages (per the closed
// form) are replaced by the dequantized PackXPage of their page; others stay exact.
void ReferenceDequant(const KvCacheSpec& s, const std::vector<float>& k,
                      const std::vector<float>& v, int64_t cached, std::vector<float>& k_hat,
                      std::vector<float>& v_hat) {
  const int hkv = s.num_kv_heads, d = s.head_dim, hd = hkv * d;
  k_hat = k;
  v_hat = v;
  const SeqKvCounters c = KvCountersForLength(s, cached);
  std::vector<float> tile(static_cast<size_t>(hd) * kP), deq(tile.size());
  std::vector<uint8_t> page(std::max(KPageBytes(s), VPageBytes(s)));
  for (int kv = 0; kv < 2; ++kv) {
    const int pages = kv == 0 ? c.num_k_pages : c.num_v_pages;
    const std::vector<float>& src = kv == 0 ? k : v;
    std::vector<float>& dst = kv == 0 ? k_hat : v_hat;
    for (int i = 0; i < pages; ++i) {
      const int64_t t0 = s.sink_tokens + int64_t{i} * kP;
      for (int h = 0; h < hkv; ++h) {
        for (int t = 0; t < kP; ++t) {
          std::memcpy(&tile[(h * kP + t) * d], &src[((t0 + t) * hkv + h) * d], d * sizeof(float));
        }
      }
      if (kv == 0) {
        PackKPage(s, tile.data(), kP * d, page.data());
        DequantKPage(s, page.data(), deq.data());
      } else {
        PackVPage(s, tile.data(), kP * d, page.data());
        DequantVPage(s, page.data(), deq.data());
      }
      for (int h = 0; h < hkv; ++h) {
        for (int t = 0; t < kP; ++t) {
          std::memcpy(&dst[((t0 + t) * hkv + h) * d], &deq[(h * kP + t) * d], d * sizeof(float));
        }
      }
    }
  }
}

struct AttnCase {
  KvCacheMode mode;
  int d, hkv, group, cached, n;
};

// Builds the cache from `cached` tokens, attends n new tokens, compares with dense attention
// over the reference-dequantized K̂/V̂ (exact fp32 K/V where not in a sealed page).
void CheckAttention(const AttnCase& tc, float tol) {
  const KvCacheSpec s = Spec(tc.mode, tc.d, tc.hkv);
  const int hq = tc.hkv * tc.group, hd = tc.hkv * tc.d;
  const int64_t total = tc.cached + tc.n;
  SCOPED_TRACE(::testing::Message()
               << KvCacheModeName(tc.mode) << " D=" << tc.d << " Hkv=" << tc.hkv
               << " g=" << tc.group << " cached=" << tc.cached << " n=" << tc.n);
  const std::vector<float> k = RandomNormal(total * hd, 100 + tc.cached);
  const std::vector<float> v = RandomNormal(total * hd, 200 + tc.cached);
  const std::vector<float> q = RandomNormal(static_cast<size_t>(tc.n) * hq * tc.d, 300 + tc.n);
  SeqState st(s, total);
  st.Append(k, v, 0, tc.cached);
  const float scale = 1.0f / std::sqrt(static_cast<float>(tc.d));
  std::vector<float> out(q.size());
  const int64_t off = tc.cached * hd;
  AttendCpu(s, st.view(), hq, q.data(), k.data() + off, v.data() + off, tc.n, scale, out.data());
  std::vector<float> k_hat, v_hat;
  ReferenceDequant(s, k, v, tc.cached, k_hat, v_hat);
  const std::vector<float> ref =
      DenseAttention(k_hat, v_hat, total, tc.hkv, tc.d, q, hq, tc.n, scale);
  float max_err = 0;
  for (size_t i = 0; i < out.size(); ++i) max_err = std::max(max_err, std::fabs(out[i] - ref[i]));
  EXPECT_LE(max_err, tol);
}

TEST(KvAttentionTest, WithoutPagesEqualsDenseAttention) {  // §8.7 (a)
  for (KvCacheMode mode : {KvCacheMode::kKittyPro, KvCacheMode::kKivi2}) {
    for (int cached : {0, 1, 20, 32, 100, 32 + 127}) {
      for (int n : {1, 7}) CheckAttention({mode, 64, 2, 4, cached, n}, 1e-5f);
    }
  }
  // Prompt in one call (prefill: everything fp, causal).
  CheckAttention({KvCacheMode::kKittyPro, 128, 2, 2, 0, 300}, 1e-5f);
  // auto pages are exact copies: dense attention even with pages.
  CheckAttention({KvCacheMode::kAuto, 64, 2, 2, 32 + 3 * 128 + 17, 3}, 1e-5f);
}

TEST(KvAttentionTest, WithPagesEqualsDenseOverDequantized) {  // §8.7 (b)
  for (KvCacheMode mode :
       {KvCacheMode::kKivi2, KvCacheMode::kKitty, KvCacheMode::kKittyPro, KvCacheMode::kK4V2}) {
    for (int cached : {32 + 128, 32 + 255, 32 + 256, 32 + 3 * 128 + 77}) {
      CheckAttention({mode, 64, 2, 2, cached, 1}, 1e-5f);
      CheckAttention({mode, 64, 2, 2, cached, 5}, 1e-5f);
    }
  }
}

TEST(KvAttentionTest, GqaGroupsAndHeadDims) {  // §8.7 (c)
  for (int group : {1, 2, 4, 8, 16}) {
    for (int d : {8, 64, 128}) {
      for (int n : {1, 4}) {
        CheckAttention({KvCacheMode::kKittyPro, d, 2, group, 32 + 2 * 128 + 9, n}, 1e-5f);
      }
    }
  }
}

// Decode loop semantics (§1.4): each step attends over (old state + the new token in fp),
// then appends; compared at every step with dense attention over the reference state.
TEST(KvAttentionTest, DecodeLoopAttendThenAppend) {
  const KvCacheSpec s = Spec(KvCacheMode::kKitty, 16, 2);
  const int hq = 4, hd = 2 * 16, l0 = 40, steps = 360;
  const int total = l0 + steps;
  const std::vector<float> k = RandomNormal(total * hd, 11), v = RandomNormal(total * hd, 12);
  const std::vector<float> q = RandomNormal(total * hq * 16, 13);
  SeqState st(s, total);
  st.Append(k, v, 0, l0);
  const float scale = 0.25f;
  for (int i = 0; i < steps; ++i) {
    const int64_t pos = l0 + i;
    std::vector<float> out(hq * 16);
    AttendCpu(s, st.view(), hq, q.data() + pos * hq * 16, k.data() + pos * hd, v.data() + pos * hd,
              1, scale, out.data());
    std::vector<float> k_hat, v_hat;
    ReferenceDequant(s, std::vector<float>(k.begin(), k.begin() + (pos + 1) * hd),
                     std::vector<float>(v.begin(), v.begin() + (pos + 1) * hd), pos, k_hat, v_hat);
    const std::vector<float> ref = DenseAttention(
        k_hat, v_hat, pos + 1, 2, 16,
        std::vector<float>(q.begin() + pos * hq * 16, q.begin() + (pos + 1) * hq * 16), hq, 1,
        scale);
    for (int e = 0; e < hq * 16; ++e) ASSERT_NEAR(out[e], ref[e], 1e-5f) << "step " << i;
    st.Append(k, v, pos, 1);
  }
  EXPECT_EQ(st.counters.num_k_pages, 2);
  EXPECT_EQ(st.counters.num_v_pages, 1);
}

// Quantization error of the attention output stays small (sanity, not exactness): pages
// change the output, but by much less than the output's own scale.
TEST(KvAttentionTest, QuantizedOutputCloseToFullPrecision) {
  const int d = 64, hkv = 2, hq = 4, cached = 32 + 4 * 128, hd = hkv * d;
  const std::vector<float> k = RandomNormal((cached + 1) * hd, 14);
  const std::vector<float> v = RandomNormal((cached + 1) * hd, 15);
  const std::vector<float> q = RandomNormal(hq * d, 16);
  const float scale = 1.0f / 8;
  const std::vector<float> exact = DenseAttention(k, v, cached + 1, hkv, d, q, hq, 1, scale);
  double prev_err = 1e30;
  for (KvCacheMode mode : {KvCacheMode::kKivi2, KvCacheMode::kKittyPro, KvCacheMode::kK4V2}) {
    const KvCacheSpec s = Spec(mode, d, hkv);
    SeqState st(s, cached + 1);
    st.Append(k, v, 0, cached);
    std::vector<float> out(hq * d);
    AttendCpu(s, st.view(), hq, q.data(), k.data() + cached * hd, v.data() + cached * hd, 1, scale,
              out.data());
    double err = 0;
    for (int e = 0; e < hq * d; ++e) err += std::pow(out[e] - exact[e], 2);
    err = std::sqrt(err / (hq * d));
    EXPECT_LT(err, 0.1) << KvCacheModeName(mode);
    EXPECT_LE(err, prev_err * 1.05) << KvCacheModeName(mode);  // more K bits, no worse
    prev_err = err;
  }
}

}  // namespace
}  // namespace kitty::kernels
