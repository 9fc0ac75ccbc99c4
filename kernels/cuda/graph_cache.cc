#include "kernels/cuda/graph_cache.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/cuda/device_buffer.h"

namespace kitty::kernels::cuda {

absl::Status GraphCache::Run(int size, int piece, cudaStream_t stream,
                             absl::FunctionRef<absl::Status()> launch) {
  auto it = execs_.find({size, piece});
  if (it == execs_.end()) {
    absl::Status s = CudaStatus(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal),
                                "cudaStreamBeginCapture");
    if (!s.ok()) return s;
    s = launch();
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);  // always ends the capture
    if (s.ok()) s = CudaStatus(end, "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    if (s.ok()) s = CudaStatus(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    if (graph != nullptr) cudaGraphDestroy(graph);
    if (!s.ok()) {
      cudaGetLastError();
      return absl::Status(s.code(), absl::StrCat("capturing the CUDA graph of batch ", size,
                                                 " piece ", piece, ": ", s.message()));
    }
    it = execs_.emplace(std::make_pair(size, piece), exec).first;
    ++captures_;
  }
  ++replays_;
  absl::Status s = CudaStatus(cudaGraphLaunch(it->second, stream), "cudaGraphLaunch");
  if (!s.ok()) cudaGetLastError();
  return s;
}

void GraphCache::Validate(const std::vector<const void*>& key) {
  if (key == key_) return;
  Clear();
  key_ = key;
}

void GraphCache::Clear() {
  for (auto& [k, exec] : execs_) cudaGraphExecDestroy(exec);
  execs_.clear();
  key_.clear();
}

int GraphBatchSize(int batch, int max_batch) {
  int p = batch;  // 1, 2
  if (batch > 2 && batch <= 4) {
    p = 4;
  } else if (batch > 4 && batch <= 256) {
    p = (batch + 7) / 8 * 8;
  } else if (batch > 256) {
    p = (batch + 15) / 16 * 16;
  }
  return std::max(batch, std::min(p, max_batch));
}

}  // namespace kitty::kernels::cuda
