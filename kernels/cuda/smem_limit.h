// File: kernels/cuda/smem_limit.h
// -----------------------------------------------------------------------------
// Opting a kernel in to large dynamic shared memory once per device, not per launch: the
// attention launchers run for every layer of every step, and cudaFuncSetAttribute is a driver
// call each time. The limit is raised to the device's opt-in maximum (less the kernel's static
// shared memory); it only permits launches up to that size, occupancy still follows the size
// each launch asks for.
//
// CUDA runtime and standard headers only. Thread-safe (std::call_once per kernel and device).
#ifndef KITTY_KERNELS_CUDA_SMEM_LIMIT_H_
#define KITTY_KERNELS_CUDA_SMEM_LIMIT_H_

#include <cuda_runtime_api.h>

#include <cstddef>
#include <mutex>

namespace kitty::kernels::cuda {

// Devices whose opt-in is remembered; beyond that the attribute is set on every call.
inline constexpr int kSmemLimitDevices = 16;

// Returns cudaSuccess when `kernel` may launch with `bytes` of dynamic shared memory on the
// current device (or the error of the attribute call / cudaErrorInvalidValue when the device
// cannot give that much).
template <auto kKernel>
cudaError_t AllowDynamicSmem(size_t bytes) {
  static std::once_flag once[kSmemLimitDevices];
  static cudaError_t result[kSmemLimitDevices];
  static int limit[kSmemLimitDevices];
  auto opt_in = [](int* out) {
    int dev = 0, max_optin = 0;
    cudaError_t err = cudaGetDevice(&dev);
    if (err == cudaSuccess)
      err = cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev);
    cudaFuncAttributes attr{};
    if (err == cudaSuccess) err = cudaFuncGetAttributes(&attr, kKernel);
    *out = max_optin - static_cast<int>(attr.sharedSizeBytes);
    if (err == cudaSuccess)
      err = cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, *out);
    return err;
  };
  int dev = 0;
  cudaError_t err = cudaGetDevice(&dev);
  if (err != cudaSuccess) return err;
  int lim = 0;
  if (dev < 0 || dev >= kSmemLimitDevices) {
    err = opt_in(&lim);
  } else {
    std::call_once(once[dev], [&] { result[dev] = opt_in(&limit[dev]); });
    err = result[dev];
    lim = limit[dev];
  }
  if (err != cudaSuccess) return err;
  return bytes <= static_cast<size_t>(lim) ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace kitty::kernels::cuda

#endif  // KITTY_KERNELS_CUDA_SMEM_LIMIT_H_
