#include "block_manager/prefix_hash.h"

#include <iomanip>

namespace kitty::block_manager {
namespace {

// MurmurHash3 fmix64: a bijective avalanche mixer.
constexpr uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

// Two lanes with different seeds and multipliers give 128 bits.
constexpr uint64_t kSeedHi = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kSeedLo = 0xd1b54a32d192ed03ULL;
constexpr uint64_t kMulHi = 0x87c37b91114253d5ULL;
constexpr uint64_t kMulLo = 0x4cf5ad432745937fULL;
// Domain tags keep a salt and a token segment of equal bits apart.
constexpr uint64_t kSaltTag = 0x5341'4c54ULL;     // "SALT"
constexpr uint64_t kSegmentTag = 0x5345'474dULL;  // "SEGM"

struct Lanes {
  uint64_t hi;
  uint64_t lo;
  void Add(uint64_t v) {
    hi = Mix64(hi ^ (v * kMulHi + kSeedHi));
    lo = Mix64(lo ^ (v * kMulLo + kSeedLo)) + hi;
  }
};

}  // namespace

std::ostream& operator<<(std::ostream& os, const BlockHash& x) {
  std::ios_base::fmtflags flags = os.flags();
  os << std::hex << std::setfill('0') << std::setw(16) << x.hi << std::setw(16) << x.lo;
  os.flags(flags);
  return os;
}

BlockHash HashSalt(std::string_view cache_salt) {
  Lanes h{kSeedHi, kSeedLo};
  h.Add(kSaltTag);
  for (unsigned char c : cache_salt) h.Add(c);
  h.Add(cache_salt.size());
  return BlockHash{h.hi, h.lo};
}

BlockHash HashSegment(const BlockHash& parent, absl::Span<const int32_t> token_ids) {
  Lanes h{Mix64(parent.hi ^ kSegmentTag), Mix64(parent.lo + kSegmentTag)};
  for (int32_t t : token_ids) h.Add(static_cast<uint32_t>(t));
  h.Add(token_ids.size());
  return BlockHash{h.hi, h.lo};
}

}  // namespace kitty::block_manager
