// File: kernels/cuda/graph_cache.h
// -----------------------------------------------------------------------------
// Captured CUDA graphs for the pieces of a forward step that have fixed shapes (piecewise
// graphs, as in vLLM: the parts between two attentions are graphs, the attention and KV append,
// whose launch configuration depends on the sequences' lengths, run eagerly in between).
//
// Run(size, piece, stream, launch) replays the graph captured for (size, piece); on first use
// it captures `launch` (which must only enqueue work on `stream`: no allocation, no sync) into
// one and then replays it. A graph bakes in every pointer its kernels got: Validate(key) drops
// all graphs when the buffers they read (`key`, their addresses) changed since capture.
//
// Host code only (CUDA runtime API). Thread safety: none (one runner thread per stream).
#ifndef KITTY_KERNELS_CUDA_GRAPH_CACHE_H_
#define KITTY_KERNELS_CUDA_GRAPH_CACHE_H_

#include <cuda_runtime_api.h>

#include <cstdint>
#include <map>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace kitty::kernels::cuda {

class GraphCache {
 public:
  GraphCache() = default;
  ~GraphCache() { Clear(); }
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  absl::Status Run(int size, int piece, cudaStream_t stream,
                   absl::FunctionRef<absl::Status()> launch);
  // Drops every graph if `key` differs from the key of the graphs held.
  void Validate(const std::vector<const void*>& key);
  void Clear();

  int64_t captures() const { return captures_; }  // graphs captured so far
  int64_t replays() const { return replays_; }    // graph launches so far

 private:
  std::map<std::pair<int, int>, cudaGraphExec_t> execs_;  // (size, piece)
  std::vector<const void*> key_;
  int64_t captures_ = 0, replays_ = 0;
};

// The padded batch size whose graphs a decode step of `batch` sequences replays: 1, 2, 4, 8,
// then multiples of 8 up to 256 and of 16 beyond (vLLM's capture sizes), at most `max_batch`
// (which must be >= batch).
int GraphBatchSize(int batch, int max_batch);

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_GRAPH_CACHE_H_
