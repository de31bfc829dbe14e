// Launchers of the device code behind the CUDA convolutions of nn_ops.cc: the
// patch matrix of Note [CUDA convolution as GEMM] (im2col) and its inverse
// (col2im). Plain C++ over raw device pointers; each launcher queues its work
// on `stream` and returns the launch error.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace gradserve::cuda {

// One 2-D convolution: the image (input, or its gradient) is [batch, in_h,
// in_w, in_c] (NHWC) or [batch, in_c, in_h, in_w] (NCHW); the filter is
// [k_h, k_w, group_c, out_c] (HWIO) with in_c = groups * group_c; the output
// has out_h x out_w pixels. pad_top / pad_left are the leading pads.
struct ConvShape {
  int64_t batch, in_h, in_w, in_c;
  int64_t k_h, k_w, group_c, out_c;
  int64_t out_h, out_w;
  int64_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
  bool channels_last;  // NHWC, else NCHW

  int64_t groups() const { return in_c / group_c; }
  // One group's patch columns, k_h * k_w * group_c, and all groups' (k_h * k_w * in_c).
  int64_t patch_size() const { return k_h * k_w * group_c; }
  int64_t patch_columns() const { return k_h * k_w * in_c; }
  int64_t pixels() const { return out_h * out_w; }  // output pixels per image
};

// The patch matrix's rows [row0, row0 + rows) into `patches` ([rows,
// patch_columns()], row-major): row = (b * out_h + oy) * out_w + ox, column =
// g * patch_size() + (i * k_w + j) * group_c + c holds input channel
// g * group_c + c at the filter tap (i, j), 0 where the tap is in the padding.
cudaError_t LaunchIm2Col(const ConvShape& s, const float* in, int64_t row0, int64_t rows,
                         float* patches, cudaStream_t stream);

// The inverse: every element of the images that rows [row0, row0 + rows) belong
// to receives the sum of the `dpatches` entries ([rows, patch_columns()], laid
// out as above) copied from it; taps in the padding are dropped. Each element
// gathers its own sum (no atomics). `accumulate`: dx += sum, else dx = sum
// (the first or only chunk of an image).
cudaError_t LaunchCol2Im(const ConvShape& s, const float* dpatches, int64_t row0, int64_t rows,
                         float* dx, bool accumulate, cudaStream_t stream);

}  // namespace gradserve::cuda
