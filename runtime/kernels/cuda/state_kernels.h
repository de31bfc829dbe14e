// Launchers for the CUDA state kernels (state_ops.cc).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

// value[i] += sign * delta[i], i < n (AssignAdd/AssignSubVariableOp).
cudaError_t LaunchAccumulate(float* value, const float* delta, int64_t n, float sign,
                             cudaStream_t stream);

}  // namespace gradserve::cuda
