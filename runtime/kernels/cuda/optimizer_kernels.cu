// Fused optimizer updates (optimizer_kernels.h): one grid-stride pass over the
// variable and its slots; the hyperparameters are read once per thread from
// device memory. The expressions are grouped as the CPU kernels' are, so the
// two round alike (up to nvcc's fused multiply-adds).
#include "runtime/kernels/cuda/launch.h"
#include "runtime/kernels/cuda/optimizer_kernels.h"

namespace gradserve::cuda {
namespace {

__global__ void ApplyGradientDescent(float* var, const float* alpha_ptr, const float* delta,
                                     int64_t n) {
  const float alpha = *alpha_ptr;
  for (int64_t i : GridStride(n)) {
    var[i] -= delta[i] * alpha;
  }
}

template <bool kNesterov>
__global__ void ApplyMomentum(float* var, float* accum, const float* lr_ptr, const float* grad,
                              const float* momentum_ptr, int64_t n) {
  const float lr = *lr_ptr, momentum = *momentum_ptr;
  for (int64_t i : GridStride(n)) {
    const float g = grad[i];
    const float a = accum[i] * momentum + g;
    accum[i] = a;
    if constexpr (kNesterov) {
      var[i] -= g * lr + a * momentum * lr;
    } else {
      var[i] -= a * lr;
    }
  }
}

template <bool kNesterov>
__global__ void ApplyAdam(float* var, float* m, float* v, AdamScalars s, const float* grad,
                          int64_t n) {
  const float one = 1.f;
  const float beta1 = *s.beta1, beta2 = *s.beta2, epsilon = *s.epsilon;
  const float lr_t = *s.lr * sqrtf(one - *s.beta2_power) / (one - *s.beta1_power);
  for (int64_t i : GridStride(n)) {
    const float g = grad[i];
    const float m_t = m[i] + (g - m[i]) * (one - beta1);
    const float v_t = v[i] + (g * g - v[i]) * (one - beta2);
    m[i] = m_t;
    v[i] = v_t;
    if constexpr (kNesterov) {
      var[i] -= ((g * (one - beta1) + m_t * beta1) * lr_t) / (sqrtf(v_t) + epsilon);
    } else {
      var[i] -= (m_t * lr_t) / (sqrtf(v_t) + epsilon);
    }
  }
}

}  // namespace

cudaError_t LaunchApplyGradientDescent(float* var, const float* alpha, const float* delta,
                                       int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  ApplyGradientDescent<<<Blocks(n), kThreads, 0, stream>>>(var, alpha, delta, n);
  return cudaGetLastError();
}

cudaError_t LaunchApplyMomentum(float* var, float* accum, const float* lr, const float* grad,
                                const float* momentum, bool use_nesterov, int64_t n,
                                cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const auto kernel = use_nesterov ? ApplyMomentum<true> : ApplyMomentum<false>;
  kernel<<<Blocks(n), kThreads, 0, stream>>>(var, accum, lr, grad, momentum, n);
  return cudaGetLastError();
}

cudaError_t LaunchApplyAdam(float* var, float* m, float* v, const AdamScalars& scalars,
                            const float* grad, bool use_nesterov, int64_t n, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  const auto kernel = use_nesterov ? ApplyAdam<true> : ApplyAdam<false>;
  kernel<<<Blocks(n), kThreads, 0, stream>>>(var, m, v, scalars, grad, n);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
