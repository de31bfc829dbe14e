// Elementwise, column-sum and row-softmax kernels (cwise_kernels.h).
#include "runtime/kernels/cuda/cwise_kernels.h"

#include <cfloat>

namespace gradserve::cuda {
namespace {

constexpr int kThreads = 256;

// Blocks for n elements, grid-stride loops covering the rest.
unsigned Blocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 65535 ? (blocks > 0 ? blocks : 1) : 65535);
}

template <BinaryOp Op>
__global__ void Binary(const float* a, const float* b, float* out, int64_t n, int64_t b_size) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    const float y = b[b_size == n ? i : i % b_size];
    if constexpr (Op == BinaryOp::kAdd) out[i] = a[i] + y;
    if constexpr (Op == BinaryOp::kSub) out[i] = a[i] - y;
    if constexpr (Op == BinaryOp::kMul) out[i] = a[i] * y;
  }
}

__global__ void Relu(const float* x, float* y, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    y[i] = x[i] > 0.f ? x[i] : 0.f;
  }
}

__global__ void ReluGrad(const float* dy, const float* x, float* dx, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < n;
       i += int64_t{blockDim.x} * gridDim.x) {
    dx[i] = x[i] > 0.f ? dy[i] : 0.f;
  }
}

// One thread per column; rows summed in order (deterministic).
__global__ void ColumnSum(const float* x, float* out, int64_t rows, int64_t cols) {
  for (int64_t c = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; c < cols;
       c += int64_t{blockDim.x} * gridDim.x) {
    float sum = 0.f;
    for (int64_t r = 0; r < rows; ++r) sum += x[r * cols + c];
    out[c] = sum;
  }
}

// One block per row: max, then sum of exp, in shared memory.
__global__ void SoftmaxRows(const float* x, float* y, int64_t cols) {
  __shared__ float scratch[kThreads];
  const float* in = x + blockIdx.x * cols;
  float* out = y + blockIdx.x * cols;
  float m = -FLT_MAX;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, in[c]);
  scratch[threadIdx.x] = m;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) scratch[threadIdx.x] = fmaxf(scratch[threadIdx.x], scratch[threadIdx.x + s]);
    __syncthreads();
  }
  m = scratch[0];
  __syncthreads();
  float sum = 0.f;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) sum += expf(in[c] - m);
  scratch[threadIdx.x] = sum;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s /= 2) {
    if (threadIdx.x < s) scratch[threadIdx.x] += scratch[threadIdx.x + s];
    __syncthreads();
  }
  const float inv = 1.f / scratch[0];
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) out[c] = expf(in[c] - m) * inv;
}

}  // namespace

cudaError_t LaunchBinary(BinaryOp op, const float* a, const float* b, float* out, int64_t n,
                         int64_t b_size, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  switch (op) {
    case BinaryOp::kAdd:
      Binary<BinaryOp::kAdd><<<Blocks(n), kThreads, 0, stream>>>(a, b, out, n, b_size);
      break;
    case BinaryOp::kSub:
      Binary<BinaryOp::kSub><<<Blocks(n), kThreads, 0, stream>>>(a, b, out, n, b_size);
      break;
    case BinaryOp::kMul:
      Binary<BinaryOp::kMul><<<Blocks(n), kThreads, 0, stream>>>(a, b, out, n, b_size);
      break;
  }
  return cudaGetLastError();
}

cudaError_t LaunchRelu(const float* x, float* y, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  Relu<<<Blocks(n), kThreads, 0, stream>>>(x, y, n);
  return cudaGetLastError();
}

cudaError_t LaunchReluGrad(const float* dy, const float* x, float* dx, int64_t n,
                           cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ReluGrad<<<Blocks(n), kThreads, 0, stream>>>(dy, x, dx, n);
  return cudaGetLastError();
}

cudaError_t LaunchColumnSum(const float* x, float* out, int64_t rows, int64_t cols,
                            cudaStream_t stream) {
  if (cols == 0) return cudaSuccess;
  ColumnSum<<<Blocks(cols), kThreads, 0, stream>>>(x, out, rows, cols);
  return cudaGetLastError();
}

cudaError_t LaunchSoftmaxRows(const float* x, float* y, int64_t rows, int64_t cols,
                              cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  if (rows > 2147483647) return cudaErrorInvalidValue;
  SoftmaxRows<<<static_cast<unsigned>(rows), kThreads, 0, stream>>>(x, y, cols);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
