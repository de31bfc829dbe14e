// Launchers of the pooling and batch-norm device code (pooling_kernels.cu) for
// the OpKernels of pooling_ops.cc. Plain C++ over raw device pointers (float32)
// so that nvcc compiles nothing but the kernels. Each launcher queues its work
// on `stream`, never waits for it, and returns the first launch error.
//
// Every result is computed in the same order and precision as the CPU kernel
// of the op (runtime/kernels/cpu/pooling_ops.cc, pooling_grad_ops.cc,
// batch_norm_ops.cc), so that the two agree to float32 rounding.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

// ---- Pooling ----

// A 2-D pooling window over an image batch of `depth` channels, in_h x in_w
// pixels in, out_h x out_w pixels out; NHWC when channels_last, else NCHW.
// Output pixel (oy, ox) covers rows [oy * stride_h - pad_top, + k_h) and
// columns [ox * stride_w - pad_left, + k_w) clipped to the image: padding never
// contributes. No window is empty (graph/ops/nn_ops.h keeps explicit pads
// below the window) unless the image is: in_h or in_w 0 under EXPLICIT
// padding (MaxPool and its gradients only) still gives output pixels, whose
// MaxPool is -FLT_MAX and MaxPoolGradGrad 0; nothing is read for them.
// Windows are scanned in row-major order in either layout, as the CPU scans them.
struct PoolDims {
  int64_t batch, in_h, in_w, depth;
  int64_t out_h, out_w;
  int64_t k_h, k_w, stride_h, stride_w, pad_top, pad_left;
  bool channels_last;

  int64_t in_size() const { return batch * in_h * in_w * depth; }
  int64_t out_size() const { return batch * out_h * out_w * depth; }
};

enum class PoolKind { kMax, kAvg };

// y = MaxPool(x) (each window's maximum) or AvgPool(x) (each window's sum
// times 1 / its number of in-bounds pixels).
cudaError_t LaunchPool(PoolKind kind, const PoolDims& d, const float* x, float* y,
                       cudaStream_t stream);

// MaxPoolGrad: dx (input-shaped) is the sum of dy over the windows whose first
// maximum in row-major window order is that element of x. `argmax` is device
// scratch of d.out_size() elements.
cudaError_t LaunchMaxPoolGrad(const PoolDims& d, const float* x, const float* dy, int64_t* argmax,
                              float* dx, cudaStream_t stream);

// MaxPoolGradGrad: out (output-shaped) is g (input-shaped) at each window's
// first maximum of x.
cudaError_t LaunchMaxPoolGradGrad(const PoolDims& d, const float* x, const float* g, float* out,
                                  cudaStream_t stream);

// AvgPoolGrad: dx (input-shaped) is the sum over the windows covering each
// element of dy times 1 / the window's number of in-bounds pixels.
cudaError_t LaunchAvgPoolGrad(const PoolDims& d, const float* dy, float* dx, cudaStream_t stream);

// ---- Batch normalization ----

// A tensor viewed as [outer, channels, inner] around its channel axis:
// channels-last formats have inner = 1, channels-first ones outer = the batch.
struct ChannelDims {
  int64_t outer, channels, inner;

  int64_t per_channel() const { return outer * inner; }
};

// Bytes of device scratch (a multiple of 8) that the batch-norm launchers
// need for `d`: per-channel partial sums and coefficients.
int64_t BatchNormScratchBytes(const ChannelDims& d);

// FusedBatchNormV3's tensors: x and y shaped like d, the others [channels].
// mean and variance are read in inference, and in training when avg_factor != 1.
struct BatchNormForward {
  const float* x;
  const float* scale;
  const float* offset;
  const float* mean;
  const float* variance;
  float* y;  // may be x
  float* batch_mean;
  float* batch_variance;
  float* saved_mean;      // reserve_space_1
  float* saved_variance;  // reserve_space_2
};

// FusedBatchNormV3 as its CPU kernel defines it (batch_norm_ops.cc): training
// normalizes with the batch's mean and biased variance (two passes, sums in
// double) and blends the unbiased variance into the running statistics when
// avg_factor != 1; inference uses mean and variance. An empty x (per_channel()
// == 0) gives NaN statistics.
cudaError_t LaunchBatchNormForward(const ChannelDims& d, const BatchNormForward& t, float epsilon,
                                   float avg_factor, bool is_training, void* scratch,
                                   cudaStream_t stream);

// FusedBatchNormGradV3's tensors: dy, x and dx shaped like d, the others [channels].
struct BatchNormGrad {
  const float* dy;
  const float* x;
  const float* scale;
  const float* mean;      // reserve_space_1
  const float* variance;  // reserve_space_2
  float* dx;              // may be dy
  float* d_scale;
  float* d_offset;
};

// FusedBatchNormGradV3 as its CPU kernel defines it (sums in double). An empty
// x gives zero scale and offset gradients.
cudaError_t LaunchBatchNormGrad(const ChannelDims& d, const BatchNormGrad& t, float epsilon,
                                bool is_training, void* scratch, cudaStream_t stream);

// LaunchFill (p[i] = value for i < n) is reduction_kernels.h's.

}  // namespace gradserve::cuda
