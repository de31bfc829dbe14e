// Launchers of the fused CUDA optimizer updates (optimizer_kernels.cu) for
// the OpKernels of optimizer_ops.cc, with TensorFlow's formulas (as the CPU
// kernels in runtime/kernels/cpu/optimizer_ops.cc). Plain C++ over raw device
// pointers (float32). The hyperparameters are device scalars read by the
// kernel itself, as TensorFlow's GPU ApplyAdam does: the host never waits for
// them. Each launcher updates n elements in place, queues its work on
// `stream`, never waits for it, and returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

// var -= alpha * delta.
cudaError_t LaunchApplyGradientDescent(float* var, const float* alpha, const float* delta,
                                       int64_t n, cudaStream_t stream);

// accum = accum * momentum + grad; var -= lr * accum, or with Nesterov
// var -= grad * lr + accum * momentum * lr.
cudaError_t LaunchApplyMomentum(float* var, float* accum, const float* lr, const float* grad,
                                const float* momentum, bool use_nesterov, int64_t n,
                                cudaStream_t stream);

// Adam's device scalars.
struct AdamScalars {
  const float* beta1_power;
  const float* beta2_power;
  const float* lr;
  const float* beta1;
  const float* beta2;
  const float* epsilon;
};

// lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power);
// m += (grad - m) * (1 - beta1); v += (grad^2 - v) * (1 - beta2);
// var -= lr_t * m / (sqrt(v) + epsilon), or with Nesterov
// var -= lr_t * (m * beta1 + grad * (1 - beta1)) / (sqrt(v) + epsilon).
cudaError_t LaunchApplyAdam(float* var, float* m, float* v, const AdamScalars& scalars,
                            const float* grad, bool use_nesterov, int64_t n, cudaStream_t stream);

}  // namespace gradserve::cuda
