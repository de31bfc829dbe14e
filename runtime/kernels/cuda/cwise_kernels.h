// Launchers of the CUDA device code (cwise_kernels.cu) for the OpKernels of
// cuda_ops.cc. Plain C++ over raw device pointers so nvcc compiles nothing but
// the kernels. Each queues its work on `stream` and returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

enum class BinaryOp { kAdd, kSub, kMul };

// out[i] = a[i] op b[i % b_size], i < n: b of a's shape (b_size = n), a vector
// along a's last dimension (b_size = a.dim(-1)) or a scalar (b_size = 1).
cudaError_t LaunchBinary(BinaryOp op, const float* a, const float* b, float* out, int64_t n,
                         int64_t b_size, cudaStream_t stream);
// y = max(x, 0).
cudaError_t LaunchRelu(const float* x, float* y, int64_t n, cudaStream_t stream);
// dx = x > 0 ? dy : 0.
cudaError_t LaunchReluGrad(const float* dy, const float* x, float* dx, int64_t n,
                           cudaStream_t stream);
// out[c] = sum over r of x[r, c] (row-major rows x cols).
cudaError_t LaunchColumnSum(const float* x, float* out, int64_t rows, int64_t cols,
                            cudaStream_t stream);
// y[r, :] = softmax(x[r, :]) (row-major rows x cols), max-subtracted.
cudaError_t LaunchSoftmaxRows(const float* x, float* y, int64_t rows, int64_t cols,
                              cudaStream_t stream);

}  // namespace gradserve::cuda
