// File: block_manager/prefix_hash.h
// -----------------------------------------------------------------------------
// Chained 128-bit hash of token segments for the prefix cache (KITTY.md §10.4).
//
// The chain of one sequence (S = sink_tokens, P = page_tokens):
//
//   root    = HashSalt(cache_salt)                    tenant isolation
//   sink    = HashSegment(root,    tokens[0, S))      keys the sink block
//   seg 0   = HashSegment(sink,    tokens[S, S+P))    keys (K page 0, V page 0)
//   seg i   = HashSegment(seg i-1, tokens[S+P·i, S+P·(i+1)))
//
// Segment boundaries are offset by the sink: a page never starts at a multiple of P.
//
// NOTE(block_manager): this is a fast non-cryptographic hash (two independent 64-bit lanes).
// Accidental collisions are negligible (~2^-128 per pair), but a client that can choose
// prompts under a known salt could in principle craft a collision; vLLM offers sha256 for that
// threat model. Values are deterministic across processes and builds.
#ifndef KITTY_BLOCK_MANAGER_PREFIX_HASH_H_
#define KITTY_BLOCK_MANAGER_PREFIX_HASH_H_

#include <cstdint>
#include <ostream>
#include <string_view>
#include <utility>

#include "absl/types/span.h"

namespace kitty::block_manager {

struct BlockHash {
  uint64_t hi = 0;
  uint64_t lo = 0;

  friend bool operator==(const BlockHash& a, const BlockHash& b) = default;
  template <typename H>
  friend H AbslHashValue(H h, const BlockHash& x) {
    return H::combine(std::move(h), x.hi, x.lo);
  }
  friend std::ostream& operator<<(std::ostream& os, const BlockHash& x);
};

// The chain root of a request: mixes in its cache salt ("" is a valid salt of its own).
BlockHash HashSalt(std::string_view cache_salt);

// The hash of one segment given its parent's hash (the root for the sink segment).
BlockHash HashSegment(const BlockHash& parent, absl::Span<const int32_t> token_ids);

}  // namespace kitty::block_manager

#endif  // KITTY_BLOCK_MANAGER_PREFIX_HASH_H_
