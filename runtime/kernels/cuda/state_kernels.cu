#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/state_kernels.h"

namespace gradserve::cuda {
namespace {

__global__ void Accumulate(float* value, const float* delta, int64_t n, float sign) {
  for (int64_t i : GridStride(n)) {
    value[i] += sign * delta[i];
  }
}

}  // namespace

cudaError_t LaunchAccumulate(float* value, const float* delta, int64_t n, float sign,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  Accumulate<<<Blocks(n), kThreads, 0, stream>>>(value, delta, n, sign);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
