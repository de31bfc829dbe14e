#include "runtime/kernels/cuda/state_kernels.h"

namespace gradserve::cuda {
namespace {

__global__ void Accumulate(float* value, const float* delta, int64_t n, float sign) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    value[i] += sign * delta[i];
  }
}

}  // namespace

cudaError_t LaunchAccumulate(float* value, const float* delta, int64_t n, float sign,
                             cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  constexpr int kThreads = 256;
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  Accumulate<<<static_cast<unsigned>(blocks < 65535 ? blocks : 65535), kThreads, 0, stream>>>(
      value, delta, n, sign);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
