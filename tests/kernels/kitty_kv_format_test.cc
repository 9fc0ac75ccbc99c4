// Tests for kernels/kitty/kv_format.h: modes and specs, byte sizes (KITTY.md §4 tables),
// pack round trips and bit layout (§8.1), idx validity (§8.2), the quantization bound (§8.3)
// and boost monotonicity (§8.4).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "base/status_macros.h"
#include "base/testing/status_matchers.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/kitty/kv_format.h"

namespace kitty::kernels {
namespace {

using ::kitty::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr int kP = KvCacheSpec::kPageTokens;
constexpr KvCacheMode kQuantModes[] = {KvCacheMode::kKivi2, KvCacheMode::kKitty,
                                       KvCacheMode::kKittyPro, KvCacheMode::kK4V2};

KvCacheSpec Spec(KvCacheMode mode, int d, int hkv, double fraction = -1) {
  absl::StatusOr<KvCacheSpec> spec = MakeKvCacheSpec(mode, d, hkv, -1, fraction);
  KITTY_CHECK(spec.ok()) << spec.status();
  return *spec;
}

std::vector<float> RandomNormal(size_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, stddev);
  std::vector<float> x(n);
  for (float& v : x) v = dist(rng);
  return x;
}

// ---------------------------------------------------------------------------------------
// Modes and specs.

TEST(KvCacheModeTest, ParsesAndNamesEveryMode) {
  for (KvCacheMode mode : {KvCacheMode::kAuto, KvCacheMode::kKivi2, KvCacheMode::kKitty,
                           KvCacheMode::kKittyPro, KvCacheMode::kK4V2}) {
    ASSERT_OK_AND_ASSIGN(KvCacheMode parsed, ParseKvCacheMode(KvCacheModeName(mode)));
    EXPECT_EQ(parsed, mode);
  }
  EXPECT_EQ(KvCacheModeName(KvCacheMode::kKittyPro), "kitty-pro");
}

TEST(KvCacheModeTest, UnknownNameListsValidNames) {
  EXPECT_THAT(ParseKvCacheMode("kitty_pro"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("kitty_pro"), HasSubstr("auto"), HasSubstr("kivi2"),
                             HasSubstr("kitty-pro"), HasSubstr("k4v2"))));
}

TEST(KvCacheSpecTest, ModeDefaults) {
  EXPECT_EQ(Spec(KvCacheMode::kKivi2, 128, 8).boost_channels, 0);
  EXPECT_EQ(Spec(KvCacheMode::kKitty, 128, 8).boost_channels, 16);
  EXPECT_EQ(Spec(KvCacheMode::kKittyPro, 128, 8).boost_channels, 32);
  EXPECT_EQ(Spec(KvCacheMode::kK4V2, 128, 8).boost_channels, 128);
  EXPECT_EQ(Spec(KvCacheMode::kKitty, 64, 8).boost_channels, 8);
  const KvCacheSpec pro = Spec(KvCacheMode::kKittyPro, 128, 8);
  EXPECT_TRUE(pro.quantized());
  EXPECT_EQ(pro.sink_tokens, 32);
  EXPECT_EQ(pro.v_window_tokens, 128);
  EXPECT_EQ(pro.k_tail_capacity(), 128);
  EXPECT_EQ(pro.v_tail_capacity(), 256);
  const KvCacheSpec dense = Spec(KvCacheMode::kAuto, 128, 8);
  EXPECT_FALSE(dense.quantized());
  EXPECT_EQ(dense.v_window_tokens, 0);
  EXPECT_EQ(dense.v_tail_capacity(), 128);
}

TEST(KvCacheSpecTest, OverridesAndAccuracyRunRatio) {
  // Kitty-Pro of the accuracy scripts: ratio 0.2 → int(128*0.2 + 1e-6) = 25.
  EXPECT_EQ(Spec(KvCacheMode::kKittyPro, 128, 8, 0.2).boost_channels, 25);
  EXPECT_EQ(Spec(KvCacheMode::kKitty, 128, 8, 0.0).boost_channels, 0);
  ASSERT_OK_AND_ASSIGN(KvCacheSpec kivi, MakeKvCacheSpec(KvCacheMode::kKivi2, 128, 8, 0));
  EXPECT_EQ(kivi.sink_tokens, 0);
}

TEST(KvCacheSpecTest, RejectsInvalidShapes) {
  EXPECT_THAT(MakeKvCacheSpec(KvCacheMode::kKitty, 66, 8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of 4")));
  EXPECT_THAT(MakeKvCacheSpec(KvCacheMode::kKitty, 128, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_kv_heads")));
  EXPECT_THAT(MakeKvCacheSpec(KvCacheMode::kK4V2, 256, 8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("< 256")));
  EXPECT_THAT(MakeKvCacheSpec(KvCacheMode::kKitty, 128, 8, -1, 1.5),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fraction")));
  EXPECT_OK(MakeKvCacheSpec(KvCacheMode::kKittyPro, 256, 8));  // DB = 64
}

// ---------------------------------------------------------------------------------------
// Sizes (KITTY.md §4 tables, §10.1).

double KBytesPerToken(const KvCacheSpec& s) {
  return static_cast<double>(KPageBytes(s)) / (s.num_kv_heads * kP);
}
double VBytesPerToken(const KvCacheSpec& s) {
  return static_cast<double>(VPageBytes(s)) / (s.num_kv_heads * kP);
}

TEST(KvPageBytesTest, BytesPerTokenPerKvHeadMatchKittyTable) {
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kKivi2, 128, 8)), 37.0);
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kKitty, 128, 8)), 41.0);
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kKittyPro, 128, 8)), 45.0);
  EXPECT_EQ(VBytesPerToken(Spec(KvCacheMode::kKittyPro, 128, 8)), 36.0);
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kKitty, 64, 4)), 20.5);
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kKittyPro, 64, 4)), 22.5);
  EXPECT_EQ(VBytesPerToken(Spec(KvCacheMode::kKitty, 64, 4)), 20.0);
  // §10.1: D=128, DB=32 → 5760 B per head including meta; head blocks 16-B aligned.
  EXPECT_EQ(GetKHeadLayout(Spec(KvCacheMode::kKittyPro, 128, 1)).head_bytes, 5760u);
  EXPECT_EQ(KPageBytes(Spec(KvCacheMode::kKittyPro, 128, 8)), 8u * 5760u);
  EXPECT_EQ(GetVHeadLayout(Spec(KvCacheMode::kKivi2, 128, 1)).head_bytes, 4608u);
  // K4V2 (DB=D): 2+2 bits + idx + meta.
  EXPECT_EQ(KBytesPerToken(Spec(KvCacheMode::kK4V2, 128, 2)), 69.0);
  // Odd sizes pad each head block to 16 B.
  const KvCacheSpec odd = Spec(KvCacheMode::kKitty, 12, 3, 0.25);  // DB = 3
  const KHeadLayout kl = GetKHeadLayout(odd);
  EXPECT_EQ(kl.sparse_offset, 12u * 32u);
  EXPECT_EQ(kl.idx_offset, 15u * 32u);
  EXPECT_EQ(kl.meta_offset, 15u * 32u + 12u);
  EXPECT_EQ(kl.head_bytes, 544u);  // 480 + 12 + 48 = 540 → 544
  EXPECT_EQ(KPageBytes(odd), 3u * 544u);
  EXPECT_EQ(GetVHeadLayout(odd).head_bytes, 128u * 3u + 512u);
}

TEST(KvPageBytesTest, AutoPagesAndFullPrecisionBlocks) {
  const KvCacheSpec dense = Spec(KvCacheMode::kAuto, 64, 4);
  EXPECT_EQ(KPageBytes(dense), 4u * 4u * 128u * 64u);
  EXPECT_EQ(VPageBytes(dense), 4u * 4u * 128u * 64u);
  const KvCacheSpec pro = Spec(KvCacheMode::kKittyPro, 128, 8);
  EXPECT_EQ(SinkBlockBytes(pro, DType::kFloat16), 2u * 8u * 32u * 128u * 2u);
  EXPECT_EQ(TailSlotBytes(pro, DType::kFloat16), 8u * (128u + 256u) * 128u * 2u);
  EXPECT_EQ(TailSlotBytes(dense, DType::kFloat32), 4u * (128u + 128u) * 64u * 4u);
}

TEST(KvMemoryStatsTest, BitsAndRatiosMatchKittyTable) {
  const KvMemoryStats kivi =
      ComputeKvMemoryStats(Spec(KvCacheMode::kKivi2, 128, 8), DType::kFloat16);
  EXPECT_DOUBLE_EQ(kivi.k_bits_per_element, 2.3125);
  EXPECT_DOUBLE_EQ(kivi.v_bits_per_element, 2.25);
  EXPECT_NEAR(kivi.page_ratio_vs_fp16, 7.01, 0.005);
  const KvMemoryStats kitty =
      ComputeKvMemoryStats(Spec(KvCacheMode::kKitty, 128, 8), DType::kFloat16);
  EXPECT_DOUBLE_EQ(kitty.k_bits_per_element, 2.5625);
  EXPECT_NEAR(kitty.page_ratio_vs_fp16, 6.65, 0.005);
  const KvMemoryStats pro =
      ComputeKvMemoryStats(Spec(KvCacheMode::kKittyPro, 128, 8), DType::kFloat16);
  EXPECT_DOUBLE_EQ(pro.k_bits_per_element, 2.8125);
  EXPECT_NEAR(pro.page_ratio_vs_fp16, 6.32, 0.005);
  const KvMemoryStats pro64 =
      ComputeKvMemoryStats(Spec(KvCacheMode::kKittyPro, 64, 8), DType::kFloat16);
  EXPECT_DOUBLE_EQ(pro64.v_bits_per_element, 2.5);
  EXPECT_NEAR(pro64.page_ratio_vs_fp16, 6.02, 0.005);
  const KvMemoryStats dense =
      ComputeKvMemoryStats(Spec(KvCacheMode::kAuto, 128, 8), DType::kFloat16);
  EXPECT_DOUBLE_EQ(dense.k_bits_per_element, 16.0);
  EXPECT_DOUBLE_EQ(dense.page_ratio_vs_fp16, 1.0);
}

TEST(KvMemoryStatsTest, ThirtyTwoKOccupancyMatchesKittyTable) {
  constexpr int64_t kLen = 32768;
  EXPECT_EQ(SequenceKvBytesPerKvHead(Spec(KvCacheMode::kKittyPro, 128, 8), kLen, DType::kFloat16),
            2737536);
  EXPECT_EQ(SequenceKvBytesPerKvHead(Spec(KvCacheMode::kKitty, 128, 8), kLen, DType::kFloat16),
            2606976);
  EXPECT_EQ(SequenceKvBytesPerKvHead(Spec(KvCacheMode::kKittyPro, 64, 8), kLen, DType::kFloat16),
            1433792);
  EXPECT_EQ(SequenceKvBytesPerKvHead(Spec(KvCacheMode::kKitty, 64, 8), kLen, DType::kFloat16),
            1368512);
  EXPECT_EQ(SequenceKvBytesPerKvHead(Spec(KvCacheMode::kAuto, 128, 8), kLen, DType::kFloat16),
            16777216);
}

// ---------------------------------------------------------------------------------------
// §8.1 pack round trip and bit layout.

struct KHeadContent {
  std::vector<uint8_t> codes, idx;
  std::vector<uint16_t> meta;
};

KHeadContent RandomKHead(const KvCacheSpec& s, std::mt19937& rng) {
  const int d = s.head_dim, db = s.boost_channels;
  KHeadContent c;
  std::vector<int> perm(d);
  std::iota(perm.begin(), perm.end(), 0);
  std::shuffle(perm.begin(), perm.end(), rng);
  c.idx.assign(d, static_cast<uint8_t>(db));
  for (int r = 0; r < db; ++r) c.idx[perm[r]] = static_cast<uint8_t>(r);
  c.codes.resize(static_cast<size_t>(d) * kP);
  for (int ch = 0; ch < d; ++ch) {
    const int levels = c.idx[ch] < db ? 15 : 3;
    for (int t = 0; t < kP; ++t) c.codes[ch * kP + t] = rng() % (levels + 1);
  }
  c.meta.resize(2 * d);
  for (uint16_t& m : c.meta) m = static_cast<uint16_t>(rng());
  return c;
}

TEST(KvPackTest, KHeadRoundTripIsBitExact) {
  std::mt19937 rng(1);
  for (KvCacheMode mode : kQuantModes) {
    for (int d : {8, 12, 64, 128}) {
      const KvCacheSpec s = Spec(mode, d, 1);
      SCOPED_TRACE(::testing::Message() << KvCacheModeName(mode) << " D=" << d);
      for (int rep = 0; rep < 3; ++rep) {
        const KHeadContent in = RandomKHead(s, rng);
        std::vector<uint8_t> block(GetKHeadLayout(s).head_bytes, 0xcd);
        EncodeKHead(s, in.codes.data(), in.idx.data(), in.meta.data(), block.data());
        KHeadContent out{std::vector<uint8_t>(in.codes.size()), std::vector<uint8_t>(d),
                         std::vector<uint16_t>(2 * d)};
        DecodeKHead(s, block.data(), out.codes.data(), out.idx.data(), out.meta.data());
        EXPECT_EQ(out.codes, in.codes);
        EXPECT_EQ(out.idx, in.idx);
        EXPECT_EQ(out.meta, in.meta);
        // Padding is zeroed.
        for (size_t b = GetKHeadLayout(s).meta_offset + 4 * d; b < block.size(); ++b) {
          EXPECT_EQ(block[b], 0);
        }
      }
    }
  }
}

TEST(KvPackTest, VHeadRoundTripIsBitExact) {
  std::mt19937 rng(2);
  for (int d : {8, 12, 64, 128}) {
    const KvCacheSpec s = Spec(KvCacheMode::kKittyPro, d, 1);
    std::vector<uint8_t> codes(static_cast<size_t>(kP) * d);
    for (uint8_t& c : codes) c = rng() % 4;
    std::vector<uint16_t> meta(2 * kP);
    for (uint16_t& m : meta) m = static_cast<uint16_t>(rng());
    std::vector<uint8_t> block(GetVHeadLayout(s).head_bytes, 0xcd);
    EncodeVHead(s, codes.data(), meta.data(), block.data());
    std::vector<uint8_t> codes_out(codes.size());
    std::vector<uint16_t> meta_out(meta.size());
    DecodeVHead(s, block.data(), codes_out.data(), meta_out.data());
    EXPECT_EQ(codes_out, codes);
    EXPECT_EQ(meta_out, meta);
  }
}

TEST(KvPackTest, KByteLayoutIsChannelMajorLsbFirst) {
  const KvCacheSpec s = Spec(KvCacheMode::kKittyPro, 8, 1);  // D=8, DB=2
  KHeadContent c{
      std::vector<uint8_t>(8 * kP, 0), {2, 2, 2, 2, 2, 1, 0, 2}, std::vector<uint16_t>(16, 0)};
  c.codes[5 * kP + 6] = 0b1110;    // channel 5 (sparse row 1), token 6
  c.codes[6 * kP + 127] = 0b0111;  // channel 6 (sparse row 0), token 127
  c.codes[0 * kP + 1] = 0b11;      // channel 0 (not boosted), token 1
  c.meta[2 * 3] = 0x1234;          // scale of channel 3
  c.meta[2 * 3 + 1] = 0xabcd;      // min of channel 3
  std::vector<uint8_t> b(GetKHeadLayout(s).head_bytes);
  EncodeKHead(s, c.codes.data(), c.idx.data(), c.meta.data(), b.data());
  // dense: byte d*32 + t/4, shift 2*(t%4)
  EXPECT_EQ(b[5 * 32 + 1], 0b10 << 4);
  EXPECT_EQ(b[6 * 32 + 31], 0b11 << 6);
  EXPECT_EQ(b[0 * 32 + 0], 0b11 << 2);
  // sparse: at D*32, row idx[d]
  EXPECT_EQ(b[8 * 32 + 1 * 32 + 1], 0b11 << 4);
  EXPECT_EQ(b[8 * 32 + 0 * 32 + 31], 0b01 << 6);
  // idx at (D+DB)*32, meta at +D: [D][2] fp16 little endian
  EXPECT_EQ(b[10 * 32 + 5], 1);
  EXPECT_EQ(b[10 * 32 + 6], 0);
  EXPECT_EQ(b[10 * 32 + 7], 2);
  const size_t meta = 10 * 32 + 8;
  EXPECT_EQ(b[meta + 12], 0x34);
  EXPECT_EQ(b[meta + 13], 0x12);
  EXPECT_EQ(b[meta + 14], 0xcd);
  EXPECT_EQ(b[meta + 15], 0xab);
  int nonzero = 0;
  for (size_t i = 0; i < meta; ++i) nonzero += b[i] != 0;
  EXPECT_EQ(nonzero, 5 + 7);  // 3 dense + 2 sparse code bytes, 7 nonzero idx bytes
}

TEST(KvPackTest, VByteLayoutIsTokenMajorLsbFirst) {
  const KvCacheSpec s = Spec(KvCacheMode::kKivi2, 8, 1);
  std::vector<uint8_t> codes(kP * 8, 0);
  std::vector<uint16_t> meta(2 * kP, 0);
  codes[3 * 8 + 6] = 2;    // token 3, channel 6
  codes[127 * 8 + 0] = 1;  // token 127, channel 0
  meta[2 * 127 + 1] = 0xbeef;
  std::vector<uint8_t> b(GetVHeadLayout(s).head_bytes);
  EncodeVHead(s, codes.data(), meta.data(), b.data());
  EXPECT_EQ(b[3 * 2 + 1], 2 << 4);
  EXPECT_EQ(b[127 * 2 + 0], 1);
  EXPECT_EQ(b[128 * 2 + 4 * 127 + 2], 0xef);
  EXPECT_EQ(b[128 * 2 + 4 * 127 + 3], 0xbe);
}

// PackKPage/PackVPage store exactly the codes and fp16 meta of QuantizeGroup over the page's
// groups, in every mode and head of a multi-head page, honouring head_stride.
TEST(KvPackTest, PackedPagesHoldQuantizeGroupCodes) {
  for (KvCacheMode mode : kQuantModes) {
    for (int d : {8, 64, 128}) {
      const KvCacheSpec s = Spec(mode, d, 3);
      SCOPED_TRACE(::testing::Message() << KvCacheModeName(mode) << " D=" << d);
      const int64_t head_stride = (kP + 7) * d;  // not a whole page: exercises the stride
      const std::vector<float> src = RandomNormal(3 * head_stride, 10 + d);
      std::vector<uint8_t> kpage(KPageBytes(s)), vpage(VPageBytes(s));
      PackKPage(s, src.data(), head_stride, kpage.data());
      PackVPage(s, src.data(), head_stride, vpage.data());
      for (int h = 0; h < 3; ++h) {
        const float* x = src.data() + h * head_stride;
        KHeadContent k{std::vector<uint8_t>(d * kP), std::vector<uint8_t>(d),
                       std::vector<uint16_t>(2 * d)};
        DecodeKHead(s, kpage.data() + h * GetKHeadLayout(s).head_bytes, k.codes.data(),
                    k.idx.data(), k.meta.data());
        std::vector<uint8_t> expect(kP);
        for (int ch = 0; ch < d; ++ch) {
          const GroupQuantParams p =
              QuantizeGroup(x + ch, d, kP, k.idx[ch] < s.boost_channels ? 15 : 3, expect.data());
          ASSERT_TRUE(std::equal(expect.begin(), expect.end(), &k.codes[ch * kP]));
          EXPECT_EQ(k.meta[2 * ch], p.scale16);
          EXPECT_EQ(k.meta[2 * ch + 1], p.min16);
        }
        std::vector<uint8_t> vcodes(kP * d);
        std::vector<uint16_t> vmeta(2 * kP);
        DecodeVHead(s, vpage.data() + h * GetVHeadLayout(s).head_bytes, vcodes.data(),
                    vmeta.data());
        for (int t = 0; t < kP; ++t) {
          const GroupQuantParams p = QuantizeGroup(x + t * d, 1, d, 3, expect.data());
          ASSERT_TRUE(std::equal(expect.begin(), expect.begin() + d, &vcodes[t * d]));
          EXPECT_EQ(vmeta[2 * t], p.scale16);
          EXPECT_EQ(vmeta[2 * t + 1], p.min16);
        }
      }
    }
  }
}

TEST(KvPackTest, AutoPagesCopyFloats) {
  const KvCacheSpec s = Spec(KvCacheMode::kAuto, 8, 2);
  const int64_t head_stride = 200 * 8;
  const std::vector<float> src = RandomNormal(2 * head_stride, 3);
  std::vector<uint8_t> page(KPageBytes(s));
  std::vector<float> out(2 * kP * 8);
  PackKPage(s, src.data(), head_stride, page.data());
  DequantKPage(s, page.data(), out.data());
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < kP * 8; ++i) EXPECT_EQ(out[h * kP * 8 + i], src[h * head_stride + i]);
  }
  PackVPage(s, src.data(), head_stride, page.data());
  DequantVPage(s, page.data(), out.data());
  EXPECT_EQ(out[kP * 8 + 5], src[head_stride + 5]);
}

// ---------------------------------------------------------------------------------------
// §8.2 idx validity.

void ExpectValidIdx(const std::vector<float>& scores, const std::vector<uint8_t>& idx, int db) {
  const int d = static_cast<int>(scores.size());
  std::vector<int> by_rank(db, -1);
  for (int ch = 0; ch < d; ++ch) {
    ASSERT_LE(idx[ch], db);
    if (idx[ch] < db) {
      ASSERT_EQ(by_rank[idx[ch]], -1) << "rank used twice";
      by_rank[idx[ch]] = ch;
    }
  }
  for (int r = 0; r < db; ++r) ASSERT_NE(by_rank[r], -1) << "rank " << r << " unused";
  // Sparse rows in descending score order, ties → lower channel first.
  for (int r = 1; r < db; ++r) {
    const float a = scores[by_rank[r - 1]], b = scores[by_rank[r]];
    EXPECT_TRUE(a > b || (a == b && by_rank[r - 1] < by_rank[r]));
  }
  // Boosted ≥ non-boosted, and on equal scores the boosted channel has the lower index.
  for (int r = 0; r < db; ++r) {
    for (int ch = 0; ch < d; ++ch) {
      if (idx[ch] < db) continue;
      const float a = scores[by_rank[r]], b = scores[ch];
      EXPECT_TRUE(a > b || (a == b && by_rank[r] < ch)) << by_rank[r] << " vs " << ch;
    }
  }
}

TEST(KvBoostTest, IdxIsBijectionOrderedByScore) {
  std::mt19937 rng(4);
  for (int d : {8, 64, 128}) {
    for (int db : {0, 1, d / 8, d / 4, d / 2, d - 1, d}) {
      std::vector<float> scores = RandomNormal(d, rng());
      for (float& v : scores) v = std::fabs(v);
      std::vector<uint8_t> idx(d);
      SelectBoostChannels(scores.data(), d, db, idx.data());
      ExpectValidIdx(scores, idx, db);
    }
  }
}

TEST(KvBoostTest, TiesGoToLowerChannelIndex) {
  // All equal: ranks follow channel order.
  std::vector<float> flat(16, 0.5f);
  std::vector<uint8_t> idx(16);
  SelectBoostChannels(flat.data(), 16, 4, idx.data());
  EXPECT_EQ(idx, (std::vector<uint8_t>{0, 1, 2, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4}));
  // A tie straddling the boundary: 9 > {2,5,12 tie at 3} > others; DB=3 takes 9, 2, 5.
  std::vector<float> s(16, 1.0f);
  s[9] = 9.0f;
  s[2] = s[5] = s[12] = 3.0f;
  SelectBoostChannels(s.data(), 16, 3, idx.data());
  EXPECT_EQ(idx[9], 0);
  EXPECT_EQ(idx[2], 1);
  EXPECT_EQ(idx[5], 2);
  EXPECT_EQ(idx[12], 3);
  ExpectValidIdx(s, idx, 3);
  // Within a page: channels with identical columns tie exactly; lower index wins.
  const KvCacheSpec spec = Spec(KvCacheMode::kKitty, 8, 1, 0.25);  // DB=2
  std::vector<float> x = RandomNormal(kP * 8, 5, 0.1f);
  for (int t = 0; t < kP; ++t) {
    x[t * 8 + 6] = x[t * 8 + 3] = 4.0f + 0.01f * t;  // channels 3 and 6: largest, equal
    x[t * 8 + 1] = -(4.0f + 0.01f * t);              // channel 1: same |x|, same score
  }
  std::vector<uint8_t> page(KPageBytes(spec));
  PackKPage(spec, x.data(), kP * 8, page.data());
  const uint8_t* pidx = page.data() + GetKHeadLayout(spec).idx_offset;
  EXPECT_EQ(pidx[1], 0);
  EXPECT_EQ(pidx[3], 1);
  EXPECT_EQ(pidx[6], 2);
}

TEST(KvBoostTest, PageIdxFollowsMeanAbsScore) {
  const KvCacheSpec spec = Spec(KvCacheMode::kKittyPro, 64, 2);
  std::vector<float> x = RandomNormal(2 * kP * 64, 6);
  for (int t = 0; t < kP; ++t) x[t * 64 + 17] *= 8.0f;  // outlier channel in head 0
  std::vector<uint8_t> page(KPageBytes(spec));
  PackKPage(spec, x.data(), kP * 64, page.data());
  for (int h = 0; h < 2; ++h) {
    std::vector<float> scores(64);
    KChannelScores(x.data() + h * kP * 64, kP, 64, scores.data());
    const uint8_t* p =
        page.data() + h * GetKHeadLayout(spec).head_bytes + GetKHeadLayout(spec).idx_offset;
    ExpectValidIdx(scores, std::vector<uint8_t>(p, p + 64), spec.boost_channels);
  }
  EXPECT_EQ(page[GetKHeadLayout(spec).idx_offset + 17], 0);
}

TEST(KvBoostTest, ScoreIsFp32MeanAbs) {
  std::vector<float> x = {1.0f, -2.0f, -3.0f, 0.5f};  // [2 tokens][2 channels]
  std::vector<float> s(2);
  KChannelScores(x.data(), 2, 2, s.data());
  EXPECT_EQ(s[0], 2.0f);
  EXPECT_EQ(s[1], 1.25f);
}

// ---------------------------------------------------------------------------------------
// §8.3 quantization bound.

TEST(KvQuantTest, ErrorWithinHalfStepPlusFp16Ulps) {
  std::mt19937 rng(7);
  for (int levels : {3, 15}) {
    for (int rep = 0; rep < 200; ++rep) {
      const float stddev = std::ldexp(1.0f, static_cast<int>(rng() % 12) - 6);
      const float offset = static_cast<float>(static_cast<int>(rng() % 9) - 4) * stddev;
      std::vector<float> x = RandomNormal(kP, rng(), stddev);
      for (float& v : x) v += offset;
      std::vector<uint8_t> codes(kP);
      const GroupQuantParams p = QuantizeGroup(x.data(), 1, kP, levels, codes.data());
      const float mx = *std::max_element(x.begin(), x.end());
      const float mn = *std::min_element(x.begin(), x.end());
      const float maxabs = std::max(std::fabs(mx), std::fabs(mn));
      EXPECT_EQ(p.min, mn);
      EXPECT_FLOAT_EQ(p.scale, (mx - mn) / levels);
      const float tol = p.scale / 2 + 4 * std::ldexp(maxabs, -10);  // few fp16 ulps
      for (int t = 0; t < kP; ++t) {
        ASSERT_LE(codes[t], levels);
        const float xh = DequantCode(codes[t], p.scale16, p.min16);
        EXPECT_LE(std::fabs(x[t] - xh), tol) << "levels " << levels << " x " << x[t];
      }
      const int argmin = std::min_element(x.begin(), x.end()) - x.begin();
      EXPECT_EQ(codes[argmin], 0);
      EXPECT_EQ(DequantCode(codes[argmin], p.scale16, p.min16), HalfToFloat(p.min16));
      const int argmax = std::max_element(x.begin(), x.end()) - x.begin();
      EXPECT_EQ(codes[argmax], levels);
    }
  }
}

TEST(KvQuantTest, ConstantGroupGivesZeroCodesAndExactValues) {
  for (float c : {0.0f, 0.75f, -3.5f, 1024.0f, 0.0009765625f}) {
    std::vector<float> x(kP, c);
    std::vector<uint8_t> codes(kP, 9);
    const GroupQuantParams p = QuantizeGroup(x.data(), 1, kP, 15, codes.data());
    EXPECT_EQ(p.scale, 1e-6f);
    for (int t = 0; t < kP; ++t) {
      ASSERT_EQ(codes[t], 0);
      ASSERT_EQ(DequantCode(codes[t], p.scale16, p.min16), c);
    }
  }
}

TEST(KvQuantTest, RoundsHalfUpWithUnroundedScale) {
  // levels 3, range 3 → scale exactly 1: 0.5 → 1 and 2.5 → 3 (half-to-even would give 0, 2).
  std::vector<float> x = {0.0f, 0.5f, 2.5f, 3.0f, 1.49f};
  std::vector<uint8_t> codes(x.size());
  QuantizeGroup(x.data(), 1, x.size(), 3, codes.data());
  EXPECT_EQ(codes, (std::vector<uint8_t>{0, 1, 3, 3, 1}));
  // range 1 → scale 0.33333334f (fp16: 0.33325195). x = 0.16665 is below half a step with the
  // fp32 scale (code 0) but above it with the fp16 scale (would be code 1).
  std::vector<float> y = {0.0f, 1.0f, 0.16665f};
  QuantizeGroup(y.data(), 1, y.size(), 3, codes.data());
  EXPECT_EQ(codes[2], 0);
  // Strided access: every other element.
  std::vector<float> z = {0.0f, 99.0f, 3.0f, 99.0f, 1.6f, 99.0f};
  QuantizeGroup(z.data(), 2, 3, 3, codes.data());
  EXPECT_EQ(codes[0], 0);
  EXPECT_EQ(codes[1], 3);
  EXPECT_EQ(codes[2], 2);
}

TEST(KvQuantTest, DequantRoundsProductThenSumToFp16) {
  // scale16 = 1 + 2^-10, q = 3: 3*scale = 3 + 1.5 ulp(3) → rounds (to even) to 3 + 2 ulp =
  // 3.00390625; + (-3) = 0.00390625. A fused multiply-add would give 0.0029296875.
  const uint16_t s16 = FloatToHalf(1.0f + std::ldexp(1.0f, -10));
  ASSERT_EQ(HalfToFloat(s16), 1.0f + std::ldexp(1.0f, -10));
  EXPECT_EQ(DequantCode(3, s16, FloatToHalf(-3.0f)), 0.00390625f);
  // The sum itself is rounded: 2048 + 1 is not an fp16 value (ulp 2) → 2048 (ties to even).
  EXPECT_EQ(DequantCode(1, FloatToHalf(1.0f), FloatToHalf(2048.0f)), 2048.0f);
  EXPECT_EQ(DequantCode(3, FloatToHalf(1.0f), FloatToHalf(2048.0f)), 2052.0f);
}

// ---------------------------------------------------------------------------------------
// §8.4 boost monotonicity.

TEST(KvBoostTest, BoostedSetsAreNested) {
  std::mt19937 rng(8);
  for (int d : {8, 64, 128}) {
    std::vector<float> scores(d);
    for (float& v : scores) v = static_cast<float>(rng() % 5);  // many ties
    std::set<int> prev;
    for (int db = 0; db <= d; ++db) {
      std::vector<uint8_t> idx(d);
      SelectBoostChannels(scores.data(), d, db, idx.data());
      std::set<int> cur;
      for (int ch = 0; ch < d; ++ch) {
        if (idx[ch] < db) cur.insert(ch);
      }
      EXPECT_EQ(static_cast<int>(cur.size()), db);
      EXPECT_TRUE(std::includes(cur.begin(), cur.end(), prev.begin(), prev.end()));
      prev = cur;
    }
  }
}

double PageMse(const KvCacheSpec& s, const std::vector<float>& x) {
  std::vector<uint8_t> page(KPageBytes(s));
  std::vector<float> xh(x.size());
  PackKPage(s, x.data(), kP * s.head_dim, page.data());
  DequantKPage(s, page.data(), xh.data());
  double se = 0;
  for (size_t i = 0; i < x.size(); ++i) se += static_cast<double>(x[i] - xh[i]) * (x[i] - xh[i]);
  return se / x.size();
}

TEST(KvBoostTest, PageMseNonIncreasingInBoostChannels) {
  for (int d : {64, 128}) {
    std::vector<float> random = RandomNormal(2 * kP * d, 9);
    std::vector<float> outliers = RandomNormal(2 * kP * d, 10);
    for (int h = 0; h < 2; ++h) {
      for (int t = 0; t < kP; ++t) {
        for (int ch : {3, 17, 40})
          outliers[(h * kP + t) * d + ch] = outliers[(h * kP + t) * d + ch] * 12 + 5;
      }
    }
    for (const std::vector<float>* x : {&random, &outliers}) {
      double prev = 1e30;
      for (int db = 0; db <= d; db += d / 16) {
        const double mse =
            PageMse(Spec(KvCacheMode::kKitty, d, 2, static_cast<double>(db) / d), *x);
        EXPECT_LE(mse, prev) << "D=" << d << " DB=" << db;
        prev = mse;
      }
    }
    // Boosting just the outlier channels removes most of the error on outlier data.
    EXPECT_LT(PageMse(Spec(KvCacheMode::kKitty, d, 2, 3.0 / d), outliers),
              0.5 * PageMse(Spec(KvCacheMode::kKivi2, d, 2), outliers));
  }
}

// DB=D equals uniform per-channel INT4 and DB=0 equals KIVI K2 (per-channel INT2).
TEST(KvBoostTest, ExtremesAreUniformPerChannelQuantizers) {
  const int d = 64;
  const std::vector<float> x = RandomNormal(kP * d, 11);
  for (auto [mode, levels] : {std::pair{KvCacheMode::kK4V2, 15}, {KvCacheMode::kKivi2, 3}}) {
    const KvCacheSpec s = Spec(mode, d, 1);
    std::vector<uint8_t> page(KPageBytes(s));
    std::vector<float> xh(x.size());
    PackKPage(s, x.data(), kP * d, page.data());
    DequantKPage(s, page.data(), xh.data());
    std::vector<uint8_t> codes(kP);
    for (int ch = 0; ch < d; ++ch) {
      const GroupQuantParams p = QuantizeGroup(x.data() + ch, d, kP, levels, codes.data());
      for (int t = 0; t < kP; ++t) {
        ASSERT_EQ(xh[t * d + ch], DequantCode(codes[t], p.scale16, p.min16));
      }
      // Per-channel error bound Δ/(2·levels) (+ fp16 slack).
      for (int t = 0; t < kP; ++t) {
        ASSERT_LE(std::fabs(x[t * d + ch] - xh[t * d + ch]), p.scale / 2 + 0.02f);
      }
    }
  }
  // KIVI2 pages and "kitty with fraction 0" pages are byte-identical.
  std::vector<uint8_t> a(KPageBytes(Spec(KvCacheMode::kKivi2, d, 1)));
  std::vector<uint8_t> b(a.size());
  PackKPage(Spec(KvCacheMode::kKivi2, d, 1), x.data(), kP * d, a.data());
  PackKPage(Spec(KvCacheMode::kKittyPro, d, 1, 0.0), x.data(), kP * d, b.data());
  EXPECT_EQ(a, b);
}

}  // namespace
}  // namespace kitty::kernels
