// File: kernels/cuda/cuda_status.h
// -----------------------------------------------------------------------------
// CUDA runtime and cuBLAS / cuBLASLt return codes as absl::Status (InternalError naming the
// call), for host code at module boundaries (STYLE.md: absl::Status). Host code only.
#ifndef KITTY_KERNELS_CUDA_CUDA_STATUS_H_
#define KITTY_KERNELS_CUDA_CUDA_STATUS_H_

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace kitty::kernels::cuda {

inline absl::Status CudaStatus(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", cudaGetErrorString(err)));
}

inline absl::Status CublasStatus(cublasStatus_t st, const char* what) {
  if (st == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": cuBLAS status ", static_cast<int>(st), " (",
                                          cublasGetStatusString(st), ")"));
}

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_CUDA_STATUS_H_
