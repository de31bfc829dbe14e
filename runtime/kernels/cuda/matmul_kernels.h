// Launchers of the device code behind the reduced-precision matrix products of
// matmul_ops.cc (MatMulPrecision kBFloat16 / kFloat16): the float32 operands
// are rounded to a 16-bit type before cublasGemmEx reads them. Plain C++ over
// raw device pointers; each launcher queues its work on `stream` and returns
// the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

enum class NarrowType { kBFloat16, kFloat16 };

// out[i] = x[i] rounded to the nearest `to` value (ties to even; float16
// overflows to infinity past 65504), i < n. `out` holds n 2-byte values.
cudaError_t LaunchNarrowFloats(NarrowType to, const float* x, void* out, int64_t n,
                               cudaStream_t stream);

}  // namespace gradserve::cuda
