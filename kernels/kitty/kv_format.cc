// File: kernels/kitty/kv_format.cc
// -----------------------------------------------------------------------------
#include "kernels/kitty/kv_format.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace kitty::kernels {
namespace {

constexpr int kP = KvCacheSpec::kPageTokens;
static_assert(kP % 4 == 0, "K pages pack 4 tokens per byte");

struct ModeName {
  KvCacheMode mode;
  std::string_view name;
};
constexpr std::array<ModeName, 5> kModeNames = {{{KvCacheMode::kAuto, "auto"},
                                                 {KvCacheMode::kKivi2, "kivi2"},
                                                 {KvCacheMode::kKitty, "kitty"},
                                                 {KvCacheMode::kKittyPro, "kitty-pro"},
                                                 {KvCacheMode::kK4V2, "k4v2"}}};

size_t RoundUp16(size_t x) { return (x + 15) / 16 * 16; }

void StoreHalf(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }
uint16_t LoadHalf(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return h;
}

// Writes 2-bit code `q` (only its low two bits) as element j of a byte array.
void Put2(uint8_t* base, int j, uint8_t q) {
  base[j >> 2] |= static_cast<uint8_t>((q & 3u) << (2 * (j & 3)));
}
uint8_t Get2(const uint8_t* base, int j) { return (base[j >> 2] >> (2 * (j & 3))) & 3u; }

}  // namespace

absl::StatusOr<KvCacheMode> ParseKvCacheMode(std::string_view name) {
  for (const ModeName& m : kModeNames) {
    if (m.name == name) return m.mode;
  }
  // NOTE: Debian's Abseil has its own string_view, so std::string_view is appended directly.
  std::string message = "unknown kv cache mode '";
  message.append(name).append("'; valid modes: ");
  for (size_t i = 0; i < kModeNames.size(); ++i) {
    message.append(i == 0 ? "" : ", ").append(kModeNames[i].name);
  }
  return absl::InvalidArgumentError(message);
}

std::string_view KvCacheModeName(KvCacheMode mode) {
  for (const ModeName& m : kModeNames) {
    if (m.mode == mode) return m.name;
  }
  return "?";
}

double DefaultBoostFraction(KvCacheMode mode) {
  switch (mode) {
    case KvCacheMode::kAuto:
    case KvCacheMode::kKivi2:
      return 0.0;
    case KvCacheMode::kKitty:
      return 0.125;
    case KvCacheMode::kKittyPro:
      return 0.25;
    case KvCacheMode::kK4V2:
      return 1.0;
  }
  return 0.0;
}

absl::StatusOr<KvCacheSpec> MakeKvCacheSpec(KvCacheMode mode, int head_dim, int num_kv_heads,
                                            int sink_tokens_override,
                                            double boost_fraction_override) {
  if (head_dim <= 0 || head_dim % 4 != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("head_dim must be a positive multiple of 4, got ", head_dim));
  }
  if (num_kv_heads <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_kv_heads must be positive, got ", num_kv_heads));
  }
  KvCacheSpec spec;
  spec.mode = mode;
  spec.head_dim = head_dim;
  spec.num_kv_heads = num_kv_heads;
  spec.sink_tokens = sink_tokens_override < 0 ? 32 : sink_tokens_override;
  if (!spec.quantized()) {
    spec.boost_channels = 0;
    spec.v_window_tokens = 0;
    return spec;
  }
  const double fraction =
      boost_fraction_override < 0 ? DefaultBoostFraction(mode) : boost_fraction_override;
  if (!(fraction <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("boost fraction must be in [0, 1], got ", fraction));
  }
  spec.boost_channels = static_cast<int>(head_dim * fraction + 1e-6);
  if (spec.boost_channels >= 256) {
    return absl::InvalidArgumentError(
        absl::StrCat("boost channels must be < 256 (uint8 idx map), got ", spec.boost_channels,
                     " for head_dim ", head_dim, " in mode ", std::string(KvCacheModeName(mode))));
  }
  spec.v_window_tokens = kP;
  return spec;
}

KHeadLayout GetKHeadLayout(const KvCacheSpec& spec) {
  KITTY_CHECK(spec.quantized()) << "K head layout of an unquantized mode";
  const size_t d = spec.head_dim, db = spec.boost_channels;
  KHeadLayout l;
  l.dense_offset = 0;
  l.sparse_offset = d * (kP / 4);
  l.idx_offset = (d + db) * (kP / 4);
  l.meta_offset = l.idx_offset + d;
  l.head_bytes = RoundUp16(l.meta_offset + 4 * d);
  return l;
}

VHeadLayout GetVHeadLayout(const KvCacheSpec& spec) {
  KITTY_CHECK(spec.quantized()) << "V head layout of an unquantized mode";
  VHeadLayout l;
  l.codes_offset = 0;
  l.meta_offset = static_cast<size_t>(kP) * (spec.head_dim / 4);
  l.head_bytes = RoundUp16(l.meta_offset + 4 * kP);
  return l;
}

size_t KPageBytes(const KvCacheSpec& spec) {
  if (!spec.quantized()) return size_t{4} * spec.num_kv_heads * kP * spec.head_dim;
  return spec.num_kv_heads * GetKHeadLayout(spec).head_bytes;
}

size_t VPageBytes(const KvCacheSpec& spec) {
  if (!spec.quantized()) return size_t{4} * spec.num_kv_heads * kP * spec.head_dim;
  return spec.num_kv_heads * GetVHeadLayout(spec).head_bytes;
}

size_t SinkBlockBytes(const KvCacheSpec& spec, DType fp) {
  return size_t{2} * spec.num_kv_heads * spec.sink_tokens * spec.head_dim * DTypeSize(fp);
}

size_t TailSlotBytes(const KvCacheSpec& spec, DType fp) {
  return static_cast<size_t>(spec.num_kv_heads) *
         (spec.k_tail_capacity() + spec.v_tail_capacity()) * spec.head_dim * DTypeSize(fp);
}

GroupQuantParams QuantizeGroup(const float* x, int64_t stride, int n, int levels, uint8_t* codes) {
  KITTY_CHECK_GE(n, 1);
  float mx = x[0], mn = x[0];
  for (int i = 1; i < n; ++i) {
    mx = std::max(mx, x[i * stride]);
    mn = std::min(mn, x[i * stride]);
  }
  GroupQuantParams p;
  p.scale = std::max((mx - mn) / static_cast<float>(levels), 1e-6f);
  p.min = mn;
  p.scale16 = FloatToHalf(p.scale);
  p.min16 = FloatToHalf(mn);
  const float fl = static_cast<float>(levels);
  for (int i = 0; i < n; ++i) {
    const float q = std::floor((x[i * stride] - mn) / p.scale + 0.5f);
    codes[i] = static_cast<uint8_t>(std::clamp(q, 0.0f, fl));
  }
  return p;
}

void KChannelScores(const float* x, int num_tokens, int head_dim, float* scores) {
  for (int d = 0; d < head_dim; ++d) scores[d] = 0.0f;
  for (int t = 0; t < num_tokens; ++t) {
    for (int d = 0; d < head_dim; ++d) scores[d] += std::fabs(x[t * head_dim + d]);
  }
  for (int d = 0; d < head_dim; ++d) scores[d] /= static_cast<float>(num_tokens);
}

void SelectBoostChannels(const float* scores, int head_dim, int num_boost, uint8_t* idx) {
  KITTY_CHECK(num_boost >= 0 && num_boost <= head_dim && num_boost < 256)
      << "num_boost=" << num_boost << " head_dim=" << head_dim;
  std::vector<int> order(head_dim);
  std::iota(order.begin(), order.end(), 0);
  // Descending score; equal scores keep ascending channel order (stable).
  std::stable_sort(order.begin(), order.end(),
                   [scores](int a, int b) { return scores[a] > scores[b]; });
  for (int d = 0; d < head_dim; ++d) idx[d] = static_cast<uint8_t>(num_boost);
  for (int r = 0; r < num_boost; ++r) idx[order[r]] = static_cast<uint8_t>(r);
}

void EncodeKHead(const KvCacheSpec& spec, const uint8_t* codes, const uint8_t* idx,
                 const uint16_t* meta, uint8_t* head_block) {
  const KHeadLayout l = GetKHeadLayout(spec);
  const int d_count = spec.head_dim, db = spec.boost_channels;
  std::memset(head_block, 0, l.head_bytes);
  uint8_t* dense = head_block + l.dense_offset;
  uint8_t* sparse = head_block + l.sparse_offset;
  for (int d = 0; d < d_count; ++d) {
    const uint8_t* q = codes + d * kP;
    const bool boosted = idx[d] < db;
    for (int t = 0; t < kP; ++t) {
      Put2(dense + d * (kP / 4), t, q[t]);
      if (boosted) Put2(sparse + idx[d] * (kP / 4), t, q[t] >> 2);
    }
  }
  std::memcpy(head_block + l.idx_offset, idx, d_count);
  for (int d = 0; d < d_count; ++d) {
    StoreHalf(head_block + l.meta_offset + 4 * d, meta[2 * d]);
    StoreHalf(head_block + l.meta_offset + 4 * d + 2, meta[2 * d + 1]);
  }
}

void DecodeKHead(const KvCacheSpec& spec, const uint8_t* head_block, uint8_t* codes, uint8_t* idx,
                 uint16_t* meta) {
  const KHeadLayout l = GetKHeadLayout(spec);
  const int d_count = spec.head_dim, db = spec.boost_channels;
  const uint8_t* dense = head_block + l.dense_offset;
  const uint8_t* sparse = head_block + l.sparse_offset;
  std::memcpy(idx, head_block + l.idx_offset, d_count);
  for (int d = 0; d < d_count; ++d) {
    const bool boosted = idx[d] < db;
    for (int t = 0; t < kP; ++t) {
      uint8_t q = Get2(dense + d * (kP / 4), t);
      if (boosted) q |= static_cast<uint8_t>(Get2(sparse + idx[d] * (kP / 4), t) << 2);
      codes[d * kP + t] = q;
    }
    meta[2 * d] = LoadHalf(head_block + l.meta_offset + 4 * d);
    meta[2 * d + 1] = LoadHalf(head_block + l.meta_offset + 4 * d + 2);
  }
}

void EncodeVHead(const KvCacheSpec& spec, const uint8_t* codes, const uint16_t* meta,
                 uint8_t* head_block) {
  const VHeadLayout l = GetVHeadLayout(spec);
  const int d_count = spec.head_dim;
  std::memset(head_block, 0, l.head_bytes);
  for (int t = 0; t < kP; ++t) {
    uint8_t* row = head_block + l.codes_offset + t * (d_count / 4);
    for (int d = 0; d < d_count; ++d) Put2(row, d, codes[t * d_count + d]);
    StoreHalf(head_block + l.meta_offset + 4 * t, meta[2 * t]);
    StoreHalf(head_block + l.meta_offset + 4 * t + 2, meta[2 * t + 1]);
  }
}

void DecodeVHead(const KvCacheSpec& spec, const uint8_t* head_block, uint8_t* codes,
                 uint16_t* meta) {
  const VHeadLayout l = GetVHeadLayout(spec);
  const int d_count = spec.head_dim;
  for (int t = 0; t < kP; ++t) {
    const uint8_t* row = head_block + l.codes_offset + t * (d_count / 4);
    for (int d = 0; d < d_count; ++d) codes[t * d_count + d] = Get2(row, d);
    meta[2 * t] = LoadHalf(head_block + l.meta_offset + 4 * t);
    meta[2 * t + 1] = LoadHalf(head_block + l.meta_offset + 4 * t + 2);
  }
}

// Why: the boosted set is chosen per (page, head) from the page's own tokens (no calibration),
// so page bytes depend only on its 128 tokens (path independence, KITTY.md §8.6).
void PackKPage(const KvCacheSpec& spec, const float* src, int64_t head_stride, uint8_t* page) {
  const int d_count = spec.head_dim, hkv = spec.num_kv_heads;
  if (!spec.quantized()) {
    for (int h = 0; h < hkv; ++h) {
      std::memcpy(page + sizeof(float) * h * kP * d_count, src + h * head_stride,
                  sizeof(float) * kP * d_count);
    }
    return;
  }
  const KHeadLayout l = GetKHeadLayout(spec);
  const int db = spec.boost_channels;
  std::vector<float> scores(d_count);
  std::vector<uint8_t> idx(d_count), codes(static_cast<size_t>(d_count) * kP);
  std::vector<uint16_t> meta(2 * d_count);
  for (int h = 0; h < hkv; ++h) {
    const float* x = src + h * head_stride;  // [P][D]
    KChannelScores(x, kP, d_count, scores.data());
    SelectBoostChannels(scores.data(), d_count, db, idx.data());
    for (int d = 0; d < d_count; ++d) {
      const int levels = idx[d] < db ? 15 : 3;
      const GroupQuantParams p = QuantizeGroup(x + d, d_count, kP, levels, &codes[d * kP]);
      meta[2 * d] = p.scale16;
      meta[2 * d + 1] = p.min16;
    }
    EncodeKHead(spec, codes.data(), idx.data(), meta.data(), page + h * l.head_bytes);
  }
}

void PackVPage(const KvCacheSpec& spec, const float* src, int64_t head_stride, uint8_t* page) {
  const int d_count = spec.head_dim, hkv = spec.num_kv_heads;
  if (!spec.quantized()) {
    for (int h = 0; h < hkv; ++h) {
      std::memcpy(page + sizeof(float) * h * kP * d_count, src + h * head_stride,
                  sizeof(float) * kP * d_count);
    }
    return;
  }
  const VHeadLayout l = GetVHeadLayout(spec);
  std::vector<uint8_t> codes(static_cast<size_t>(d_count) * kP);
  std::vector<uint16_t> meta(2 * kP);
  for (int h = 0; h < hkv; ++h) {
    const float* x = src + h * head_stride;  // [P][D]
    for (int t = 0; t < kP; ++t) {
      const GroupQuantParams p = QuantizeGroup(x + t * d_count, 1, d_count, 3, &codes[t * d_count]);
      meta[2 * t] = p.scale16;
      meta[2 * t + 1] = p.min16;
    }
    EncodeVHead(spec, codes.data(), meta.data(), page + h * l.head_bytes);
  }
}

void DequantKPage(const KvCacheSpec& spec, const uint8_t* page, float* out) {
  const int d_count = spec.head_dim, hkv = spec.num_kv_heads;
  if (!spec.quantized()) {
    std::memcpy(out, page, KPageBytes(spec));
    return;
  }
  const KHeadLayout l = GetKHeadLayout(spec);
  std::vector<uint8_t> idx(d_count), codes(static_cast<size_t>(d_count) * kP);
  std::vector<uint16_t> meta(2 * d_count);
  for (int h = 0; h < hkv; ++h) {
    DecodeKHead(spec, page + h * l.head_bytes, codes.data(), idx.data(), meta.data());
    float* o = out + static_cast<int64_t>(h) * kP * d_count;  // [P][D]
    for (int d = 0; d < d_count; ++d) {
      for (int t = 0; t < kP; ++t) {
        o[t * d_count + d] = DequantCode(codes[d * kP + t], meta[2 * d], meta[2 * d + 1]);
      }
    }
  }
}

void DequantVPage(const KvCacheSpec& spec, const uint8_t* page, float* out) {
  const int d_count = spec.head_dim, hkv = spec.num_kv_heads;
  if (!spec.quantized()) {
    std::memcpy(out, page, VPageBytes(spec));
    return;
  }
  const VHeadLayout l = GetVHeadLayout(spec);
  std::vector<uint8_t> codes(static_cast<size_t>(d_count) * kP);
  std::vector<uint16_t> meta(2 * kP);
  for (int h = 0; h < hkv; ++h) {
    DecodeVHead(spec, page + h * l.head_bytes, codes.data(), meta.data());
    float* o = out + static_cast<int64_t>(h) * kP * d_count;  // [P][D]
    for (int t = 0; t < kP; ++t) {
      for (int d = 0; d < d_count; ++d) {
        o[t * d_count + d] = DequantCode(codes[t * d_count + d], meta[2 * t], meta[2 * t + 1]);
      }
    }
  }
}

KvMemoryStats ComputeKvMemoryStats(const KvCacheSpec& spec, DType fp) {
  const double d = spec.head_dim;
  KvMemoryStats s;
  s.fp_bytes_per_token = d * DTypeSize(fp);
  if (spec.quantized()) {
    const double tokens = static_cast<double>(spec.num_kv_heads) * kP;
    s.k_page_bytes_per_token = KPageBytes(spec) / tokens;
    s.v_page_bytes_per_token = VPageBytes(spec) / tokens;
  } else {
    s.k_page_bytes_per_token = s.fp_bytes_per_token;
    s.v_page_bytes_per_token = s.fp_bytes_per_token;
  }
  s.k_bits_per_element = 8 * s.k_page_bytes_per_token / d;
  s.v_bits_per_element = 8 * s.v_page_bytes_per_token / d;
  s.page_ratio_vs_fp16 = (2 * d * 2) / (s.k_page_bytes_per_token + s.v_page_bytes_per_token);
  return s;
}

int64_t SequenceKvBytesPerKvHead(const KvCacheSpec& spec, int64_t num_tokens, DType fp) {
  const KvMemoryStats s = ComputeKvMemoryStats(spec, fp);
  const int64_t sink = std::min<int64_t>(num_tokens, spec.sink_tokens);
  const int64_t x = num_tokens - sink;  // tokens after the sink
  const int64_t pk = x / kP, ck = x % kP;
  const int64_t w = spec.v_window_tokens;
  const int64_t pv = x < w ? 0 : (x - w) / kP;
  const int64_t v_tail = x - kP * pv;
  const double bytes = 2 * sink * s.fp_bytes_per_token + pk * kP * s.k_page_bytes_per_token +
                       pv * kP * s.v_page_bytes_per_token + (ck + v_tail) * s.fp_bytes_per_token;
  return static_cast<int64_t>(std::llround(bytes));
}

}  // namespace kitty::kernels
