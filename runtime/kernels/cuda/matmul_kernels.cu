// float32 -> bfloat16 / float16 rounding for the reduced-precision products
// (matmul_kernels.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/matmul_kernels.h"

namespace gradserve::cuda {
namespace {

__global__ void ToBFloat16(const float* x, __nv_bfloat16* out, int64_t n) {
  for (int64_t i : GridStride(n)) {
    out[i] = __float2bfloat16_rn(x[i]);
  }
}

__global__ void ToHalf(const float* x, __half* out, int64_t n) {
  for (int64_t i : GridStride(n)) {
    out[i] = __float2half_rn(x[i]);
  }
}

}  // namespace

cudaError_t LaunchNarrowFloats(NarrowType to, const float* x, void* out, int64_t n,
                               cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  if (to == NarrowType::kBFloat16) {
    ToBFloat16<<<Blocks(n), kThreads, 0, stream>>>(x, static_cast<__nv_bfloat16*>(out), n);
  } else {
    ToHalf<<<Blocks(n), kThreads, 0, stream>>>(x, static_cast<__half*>(out), n);
  }
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
