// im2col and col2im for the CUDA convolutions (conv_kernels.h).
#include "runtime/kernels/cuda/conv_kernels.h"
#include "runtime/kernels/cuda/launch.h"

namespace gradserve::cuda {
namespace {

// Offset of image element (b, y, x, c) in the shape's layout.
__device__ int64_t ImageIndex(const ConvShape& s, int64_t b, int64_t y, int64_t x, int64_t c) {
  return s.channels_last ? ((b * s.in_h + y) * s.in_w + x) * s.in_c + c
                         : ((b * s.in_c + c) * s.in_h + y) * s.in_w + x;
}

// One thread per patch entry; consecutive threads write consecutive columns.
__global__ void Im2Col(ConvShape s, const float* in, int64_t row0, int64_t rows, float* patches) {
  const int64_t gc = s.group_c, tap_cols = s.k_w * gc, k = s.k_h * tap_cols;
  const int64_t columns = s.k_h * s.k_w * s.in_c, total = rows * columns;
  for (int64_t e : GridStride(total)) {
    const int64_t r = e / columns, col = e - r * columns;
    const int64_t row = row0 + r;
    const int64_t ox = row % s.out_w, rest = row / s.out_w;
    const int64_t oy = rest % s.out_h, b = rest / s.out_h;
    const int64_t g = col / k, kk = col - g * k;
    const int64_t i = kk / tap_cols, in_row = kk - i * tap_cols;
    const int64_t j = in_row / gc, c = g * gc + (in_row - j * gc);
    const int64_t iy = oy * s.stride_h - s.pad_top + i * s.dil_h;
    const int64_t ix = ox * s.stride_w - s.pad_left + j * s.dil_w;
    const bool inside = iy >= 0 && iy < s.in_h && ix >= 0 && ix < s.in_w;
    patches[e] = inside ? in[ImageIndex(s, b, iy, ix, c)] : 0.f;
  }
}

// One thread per image element of images [b0, b0 + images), in the layout's
// order; it gathers every patch entry of rows [row0, row0 + rows) copied from it.
__global__ void Col2Im(ConvShape s, const float* dpatches, int64_t row0, int64_t rows, float* dx,
                       int64_t b0, int64_t total, bool accumulate) {
  const int64_t gc = s.group_c, k = s.k_h * s.k_w * gc, columns = s.k_h * s.k_w * s.in_c;
  const int64_t image = s.in_h * s.in_w * s.in_c;
  for (int64_t e : GridStride(total)) {
    const int64_t b = b0 + e / image, w = e % image;
    int64_t y, x, c;
    if (s.channels_last) {
      c = w % s.in_c;
      x = (w / s.in_c) % s.in_w;
      y = w / (s.in_c * s.in_w);
    } else {
      x = w % s.in_w;
      y = (w / s.in_w) % s.in_h;
      c = w / (s.in_w * s.in_h);
    }
    const int64_t g = c / gc;
    const float* column = dpatches + g * k + (c - g * gc);  // tap (0, 0) of channel c
    float sum = 0.f;
    // Tap (i, j) of output pixel (oy, ox) reads (y, x) when
    // oy * stride - pad + i * dilation == y (likewise x).
    for (int64_t i = 0; i < s.k_h; ++i) {
      const int64_t ty = y + s.pad_top - i * s.dil_h;
      if (ty < 0) break;  // only decreases with i
      if (ty % s.stride_h != 0) continue;
      const int64_t oy = ty / s.stride_h;
      if (oy >= s.out_h) continue;
      for (int64_t j = 0; j < s.k_w; ++j) {
        const int64_t tx = x + s.pad_left - j * s.dil_w;
        if (tx < 0) break;
        if (tx % s.stride_w != 0) continue;
        const int64_t ox = tx / s.stride_w;
        if (ox >= s.out_w) continue;
        const int64_t r = (b * s.out_h + oy) * s.out_w + ox - row0;
        if (r < 0 || r >= rows) continue;
        sum += column[r * columns + (i * s.k_w + j) * gc];
      }
    }
    const int64_t at = b * image + w;
    dx[at] = accumulate ? dx[at] + sum : sum;
  }
}

}  // namespace

cudaError_t LaunchIm2Col(const ConvShape& s, const float* in, int64_t row0, int64_t rows,
                         float* patches, cudaStream_t stream) {
  const int64_t total = rows * s.patch_columns();
  if (total == 0) return cudaSuccess;
  Im2Col<<<Blocks(total), kThreads, 0, stream>>>(s, in, row0, rows, patches);
  return cudaGetLastError();
}

cudaError_t LaunchCol2Im(const ConvShape& s, const float* dpatches, int64_t row0, int64_t rows,
                         float* dx, bool accumulate, cudaStream_t stream) {
  const int64_t per_image = s.pixels();
  if (rows == 0 || per_image == 0) return cudaSuccess;
  const int64_t b0 = row0 / per_image, b1 = (row0 + rows - 1) / per_image;
  const int64_t total = (b1 - b0 + 1) * s.in_h * s.in_w * s.in_c;
  if (total == 0) return cudaSuccess;
  Col2Im<<<Blocks(total), kThreads, 0, stream>>>(s, dpatches, row0, rows, dx, b0, total,
                                                 accumulate);
  return cudaGetLastError();
}

}  // namespace gradserve::cuda
