// File: kernels/kitty/kv_format.h
// -----------------------------------------------------------------------------
// Kitty KV-cache modes, page formats and the CPU reference quantize/pack and dequantize
// kernels (KITTY.md §2–§4, with the §10 recommendations for a paged runtime).
//
// A page holds 128 consecutive tokens (after the sink) of ONE sequence, ONE layer and all
// Hkv kv heads. K pages use per-channel asymmetric 2-bit codes, with the DB channels of
// largest mean |K| over the page boosted to 4 bits (the two high bits live in a "sparse"
// plane); V pages use per-token asymmetric 2-bit codes over the whole head. Scale and min
// are stored inline as fp16 so that a sealed page is one immutable allocation.
//
// These CPU kernels are the numerical reference for the CUDA kernels. All arithmetic is
// fp32 except where KITTY.md prescribes fp16 (stored scale/min and the dequant expression).
//
// Thread safety: all functions are pure (no shared state) and may be called concurrently
// on distinct outputs.
#ifndef KITTY_KERNELS_KITTY_KV_FORMAT_H_
#define KITTY_KERNELS_KITTY_KV_FORMAT_H_

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "kernels/dtype.h"

namespace kitty::kernels {

// Cache modes (DESIGN.md §3). kAuto stores pages unquantized (float32 on the CPU).
enum class KvCacheMode { kAuto, kKivi2, kKitty, kKittyPro, kK4V2 };

// Accepts "auto", "kivi2", "kitty", "kitty-pro", "k4v2". The error lists the valid names.
absl::StatusOr<KvCacheMode> ParseKvCacheMode(std::string_view name);
std::string_view KvCacheModeName(KvCacheMode mode);

// Default fraction of K channels boosted to 4 bits: kivi2 0, kitty 1/8, kitty-pro 1/4,
// k4v2 1; auto 0 (unused).
double DefaultBoostFraction(KvCacheMode mode);

struct KvCacheSpec {
  static constexpr int kPageTokens = 128;  // P: tokens per page = quantization group

  KvCacheMode mode = KvCacheMode::kAuto;
  int head_dim = 0;      // D
  int num_kv_heads = 0;  // Hkv
  int sink_tokens = 32;  // S: first S tokens stay full precision forever
  // DB: K channels per (head, page) stored as INT4: kivi2 0, kitty D/8, kitty-pro D/4,
  // k4v2 D; auto: 0 (unused).
  int boost_channels = 0;
  // W: extra full-precision V tokens. 128 for quantized modes (V page i seals 128 tokens
  // after K page i), 0 for auto (K and V pages seal together).
  int v_window_tokens = 0;

  bool quantized() const { return mode != KvCacheMode::kAuto; }
  // The K tail holds < 128 tokens between steps; it is packed the moment it reaches 128.
  int k_tail_capacity() const { return kPageTokens; }
  // The V tail holds < 128 + W tokens between steps (KITTY.md §10.3 linear tail).
  int v_tail_capacity() const { return kPageTokens + v_window_tokens; }
};

// Builds and validates a spec. sink_tokens_override < 0 → 32; boost_fraction_override < 0 →
// DefaultBoostFraction(mode). DB = int(D * fraction + 1e-6) (as the reference accuracy
// scripts). Errors (kInvalidArgument): D <= 0 or D % 4 != 0, Hkv <= 0, fraction > 1,
// DB >= 256 (idx is uint8 and DB itself is the "not boosted" marker).
absl::StatusOr<KvCacheSpec> MakeKvCacheSpec(KvCacheMode mode, int head_dim, int num_kv_heads,
                                            int sink_tokens_override = -1,
                                            double boost_fraction_override = -1);

// -----------------------------------------------------------------------------
// Byte layouts.
//
// Bit order everywhere (KITTY.md §4): 4 two-bit codes per byte, element j ∈ {0..3} in bits
// [2j, 2j+1] (LSB first). fp16 values are IEEE binary16, little endian.
//
// Quantized K page = Hkv head blocks of KHeadBytes() each; head h starts at h*KHeadBytes().
// Within a head block (P = 128, DB = boost_channels):
//   offset 0                      dense  [D][P/4]  uint8: low 2 bits (q & 3) of channel d,
//                                        token t at byte d*P/4 + t/4, shift 2*(t%4)
//   dense_bytes = D*P/4           sparse [DB][P/4] uint8: high 2 bits ((q >> 2) & 3) of the
//                                        boosted channel d in row idx[d], same token packing;
//                                        rows in descending score order
//   + DB*P/4                      idx    [D] uint8: rank of d among boosted channels
//                                        (0 = largest mean |K|), or DB if not boosted
//   + D                           meta   [D][2] fp16: (scale, min) of channel d
//   + 4*D, rounded up to 16       end of the head block (zero padding)
// D=128, DB=32: 4096 + 1024 + 128 + 512 = 5760 B per head (45 B/token).
//
// Quantized V page = Hkv head blocks of VHeadBytes() each; head h starts at h*VHeadBytes().
//   offset 0                      codes [P][D/4] uint8: token t, channel d at byte
//                                       t*D/4 + d/4, shift 2*(d%4) (token-major)
//   P*D/4                         meta  [P][2] fp16: (scale, min) of token t
//   + 4*P, rounded up to 16       end of the head block (zero padding)
// D=128: 4096 + 512 = 4608 B per head (36 B/token).
//
// kAuto pages hold float32 [Hkv][P][D] (the CPU backend's model dtype).
struct KHeadLayout {
  size_t dense_offset;   // 0
  size_t sparse_offset;  // D*P/4
  size_t idx_offset;     // (D+DB)*P/4
  size_t meta_offset;    // (D+DB)*P/4 + D
  size_t head_bytes;     // meta_offset + 4*D rounded up to 16
};
struct VHeadLayout {
  size_t codes_offset;  // 0
  size_t meta_offset;   // P*D/4
  size_t head_bytes;    // meta_offset + 4*P rounded up to 16
};
// REQUIRES: spec.quantized().
KHeadLayout GetKHeadLayout(const KvCacheSpec& spec);
VHeadLayout GetVHeadLayout(const KvCacheSpec& spec);

// Bytes of one page for ONE layer, all kv heads.
size_t KPageBytes(const KvCacheSpec& spec);
size_t VPageBytes(const KvCacheSpec& spec);
// Full-precision per-sequence state for ONE layer at element type `fp`:
// sink = K and V, [2][Hkv][S][D]; tail slot = K tail [Hkv][128][D] + V tail [Hkv][128+W][D].
size_t SinkBlockBytes(const KvCacheSpec& spec, DType fp);
size_t TailSlotBytes(const KvCacheSpec& spec, DType fp);

// -----------------------------------------------------------------------------
// Page kernels. src element (head h, token t, channel d) = src[h*head_stride + t*D + d]
// for t in [0, 128); pages are written completely (padding zeroed).

// Quantizes and packs one K page. src: [Hkv] x (head_stride floats, first [128][D] used).
// page: [KPageBytes(spec)].
void PackKPage(const KvCacheSpec& spec, const float* src, int64_t head_stride, uint8_t* page);
// page: [VPageBytes(spec)] (same src convention).
void PackVPage(const KvCacheSpec& spec, const float* src, int64_t head_stride, uint8_t* page);
// page: [KPageBytes(spec)]; out: [Hkv][128][D] float32.
void DequantKPage(const KvCacheSpec& spec, const uint8_t* page, float* out);
// page: [VPageBytes(spec)]; out: [Hkv][128][D] float32.
void DequantVPage(const KvCacheSpec& spec, const uint8_t* page, float* out);

// -----------------------------------------------------------------------------
// Building blocks (exposed for tests and for checking the CUDA kernels).

// Quantization result of one group. Codes are computed with the unrounded fp32 `scale`;
// dequantization uses the stored fp16 pair.
struct GroupQuantParams {
  float scale;       // max((max - min) / levels, 1e-6), fp32
  float min;         // fp32 group minimum
  uint16_t scale16;  // FloatToHalf(scale)
  uint16_t min16;    // FloatToHalf(min)
};

// Asymmetric min/max quantization of n values x[i*stride] to codes in [0, levels]
// (levels = 3 for INT2, 15 for INT4): q = clamp(floor((x - min)/scale + 0.5), 0, levels),
// all in fp32. codes: [n] (contiguous). REQUIRES: n >= 1.
GroupQuantParams QuantizeGroup(const float* x, int64_t stride, int n, int levels, uint8_t* codes);

// x̂ = q*scale16 + min16 evaluated in fp16: the product is rounded to fp16, then the sum.
inline float DequantCode(uint8_t q, uint16_t scale16, uint16_t min16) {
  // q <= 15 times an 11-bit significand is exact in fp32; then rounded to fp16.
  const float prod = RoundToHalf(static_cast<float>(q) * HalfToFloat(scale16));
  // Sum of two fp16 values formed in fp32 and rounded once to fp16 (equals the fp16 sum:
  // when the fp32 sum is inexact the smaller addend is far below half an fp16 ulp).
  return RoundToHalf(prod + HalfToFloat(min16));
}

// Boost score of each channel: scores[d] = (sum_t |x[t*D + d]|) / num_tokens in fp32,
// summed in token order. x: [num_tokens][D] (row stride D); scores: [D].
void KChannelScores(const float* x, int num_tokens, int head_dim, float* scores);

// idx map over all D channels: the num_boost channels with the largest score get their
// rank (0 = largest) in descending score order, ties broken towards the lower channel index;
// all other channels get num_boost. scores: [D]; idx: [D]. REQUIRES: 0 <= num_boost <= D,
// num_boost < 256.
void SelectBoostChannels(const float* scores, int head_dim, int num_boost, uint8_t* idx);

// Unpacked content of one quantized K head block.
//   codes:      [D][P] (channel-major), value in [0,15] for boosted channels, [0,3] otherwise
//   idx:        [D]
//   meta:       [D][2] fp16 bits (scale, min)
//   head_block: [GetKHeadLayout(spec).head_bytes] (Encode zeroes the padding)
void EncodeKHead(const KvCacheSpec& spec, const uint8_t* codes, const uint8_t* idx,
                 const uint16_t* meta, uint8_t* head_block);
void DecodeKHead(const KvCacheSpec& spec, const uint8_t* head_block, uint8_t* codes, uint8_t* idx,
                 uint16_t* meta);
// Unpacked content of one quantized V head block.
//   codes:      [P][D] (token-major), values in [0,3]
//   meta:       [P][2] fp16 bits (scale, min)
//   head_block: [GetVHeadLayout(spec).head_bytes]
void EncodeVHead(const KvCacheSpec& spec, const uint8_t* codes, const uint16_t* meta,
                 uint8_t* head_block);
void DecodeVHead(const KvCacheSpec& spec, const uint8_t* head_block, uint8_t* codes,
                 uint16_t* meta);

// -----------------------------------------------------------------------------
// Memory accounting (per kv head, per layer).
struct KvMemoryStats {
  double k_page_bytes_per_token;  // KPageBytes / (Hkv*128); auto: D * size(fp)
  double v_page_bytes_per_token;  // VPageBytes / (Hkv*128); auto: D * size(fp)
  double fp_bytes_per_token;      // one full-precision K or V token (sink, tails): D*size(fp)
  double k_bits_per_element;      // 8 * k_page_bytes_per_token / D
  double v_bits_per_element;      // 8 * v_page_bytes_per_token / D
  double page_ratio_vs_fp16;      // 2*D*2 / (k_page + v_page bytes per token)
};
// For kAuto the page bytes are reported at dtype `fp` (the GPU stores auto pages in the
// model dtype; the CPU uses float32, see KPageBytes).
KvMemoryStats ComputeKvMemoryStats(const KvCacheSpec& spec, DType fp);

// Bytes actually occupied by one sequence of `num_tokens` tokens, per kv head and layer:
// sealed K/V pages (by KPageBytes/VPageBytes, auto at `fp`) plus sink and tail tokens at
// `fp`, with the §1.2 placement. Reproduces the 32K table of KITTY.md §4.
int64_t SequenceKvBytesPerKvHead(const KvCacheSpec& spec, int64_t num_tokens, DType fp);

}  // namespace kitty::kernels

#endif  // KITTY_KERNELS_KITTY_KV_FORMAT_H_
