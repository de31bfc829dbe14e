// Launchers of the CUDA device code (cwise_kernels.cu) for the OpKernels of
// cwise_ops.cc. Plain C++ over raw device pointers; each
// queues its work on `stream` (GPU `ordinal`) and returns the launch error.
//
// The element-wise launchers are class templates over a functor of
// runtime/kernels/cwise_functors.h, explicitly instantiated in cwise_kernels.cu
// for the combinations the CUDA kernels register (another does not link). They
// evaluate the device-generic cores of cwise_functors.h on Eigen::GpuDevice
// (Note [Device-generic element-wise kernels] in runtime/kernels/cpu/cwise.h).
// Sizes are element counts; nothing is launched for 0 elements.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "runtime/kernels/cwise_functors.h"

namespace gradserve::cuda {

// y = F(x).
template <typename F, typename T, typename Out = T>
struct UnaryLauncher {
  static cudaError_t Run(const T* x, Out* y, int64_t n, cudaStream_t stream, int ordinal);
};

// z = F(x, y).
template <typename F, typename T, typename Out = T>
struct BinaryLauncher {
  // x and y of one shape.
  static cudaError_t Same(const T* x, const T* y, Out* z, int64_t n, cudaStream_t stream,
                          int ordinal);
  // x and y are operands 0 and 1 of `dims`; z has dims.out.
  static cudaError_t Broadcast(const T* x, const T* y, Out* z, const BroadcastDims& dims,
                               cudaStream_t stream, int ordinal);
};

// y = Out(x) (Cast); `truncate` (Cast's Truncate attr) matters only where
// functor::kCastTruncates<In, Out>.
template <typename In, typename Out>
struct CastLauncher {
  static cudaError_t Run(const In* x, Out* y, int64_t n, bool truncate, cudaStream_t stream,
                         int ordinal);
};

// out = cond ? t : e (float), of one shape or broadcast as operands 0, 1, 2 of
// `dims` (dims == nullptr: one shape, n elements).
cudaError_t LaunchSelect(const bool* cond, const float* t, const float* e, float* out, int64_t n,
                         const BroadcastDims* dims, cudaStream_t stream, int ordinal);

// out[i] = value (T = float or bool).
template <typename T>
cudaError_t LaunchFill(T* out, int64_t n, T value, cudaStream_t stream, int ordinal);
// out[i] = *value, one float in device memory.
cudaError_t LaunchFillFromScalar(const float* value, float* out, int64_t n, cudaStream_t stream,
                                 int ordinal);

// out = the sum of inputs[0..count) (count >= 1, device pointers in a host
// array), added in order; out may be inputs[0] (a forwarded buffer).
cudaError_t LaunchAddN(const float* const* inputs, int count, float* out, int64_t n,
                       cudaStream_t stream, int ordinal);

}  // namespace gradserve::cuda
