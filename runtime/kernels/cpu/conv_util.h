// Pieces shared by the CPU Conv2D kernel (conv_ops.cc) and its gradients
// (conv_grad_ops.cc), which all run as GEMMs over a patch matrix: see
// Note [Conv2D as GEMM] in conv_ops.cc. Header-only templates; every function
// is thread-safe and runs on the op's intra-op thread budget.
#pragma once

#include <algorithm>
#include <cstdint>
#include <type_traits>

#include "runtime/kernels/cpu/matmul.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {

// The scratch a convolution kernel keeps for one chunk of patch rows, in bytes.
constexpr int64_t kPatchBytes = 8 << 20;

// One NHWC convolution's sizes: input [batch, in_h, in_w, in_c], filter
// [k_h, k_w, group_c, out_c] (HWIO), output [batch, out_h, out_w, out_c]; the
// pads are the leading (top, left) ones, the trailing ones being implied.
struct ConvGeometry {
  int64_t batch, in_h, in_w, in_c;
  int64_t k_h, k_w, group_c, out_c;  // group_c: the filter's input depth
  int64_t out_h, out_w;
  int64_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;

  int64_t groups() const { return in_c / group_c; }
  // Columns of the patch matrix (one group's): k_h * k_w * group_c.
  int64_t patch_size() const { return k_h * k_w * group_c; }
  // Rows of the patch matrix: output pixels over the whole batch.
  int64_t pixels() const { return batch * out_h * out_w; }
  // The input already is the patch matrix [pixels, patch_size]: a 1x1 stride-1
  // unpadded convolution, or a filter covering the whole unpadded image.
  bool Pointwise() const {
    return groups() == 1 && pad_top == 0 && pad_left == 0 && k_h == 1 && k_w == 1 &&
           stride_h == 1 && stride_w == 1 && out_h == in_h && out_w == in_w;
  }
  bool WholeImage() const {
    return groups() == 1 && pad_top == 0 && pad_left == 0 && k_h == in_h && k_w == in_w &&
           out_h == 1 && out_w == 1 && dil_h == 1 && dil_w == 1;
  }
};

// The geometry of convolving an input of shape `input` by a filter of shape
// `filter` (both 4-D, NHWC and HWIO, depths already checked) under the window's
// strides, dilations and padding; fails as ComputeWindowDim does.
inline absl::StatusOr<ConvGeometry> MakeConvGeometry(const Shape& input, const Shape& filter,
                                                     const Window2D& w) {
  ConvGeometry g{.batch = input.dim(0),
                 .in_h = input.dim(1),
                 .in_w = input.dim(2),
                 .in_c = input.dim(3),
                 .k_h = filter.dim(0),
                 .k_w = filter.dim(1),
                 .group_c = filter.dim(2),
                 .out_c = filter.dim(3)};
  GS_ASSIGN_OR_RETURN(WindowDim rows, ComputeWindowDim(g.in_h, g.k_h, w.dilation[0], w.stride[0],
                                                       w.padding, w.pad[0]));
  GS_ASSIGN_OR_RETURN(WindowDim cols, ComputeWindowDim(g.in_w, g.k_w, w.dilation[1], w.stride[1],
                                                       w.padding, w.pad[1]));
  g.out_h = rows.output;
  g.out_w = cols.output;
  g.stride_h = w.stride[0];
  g.stride_w = w.stride[1];
  g.dil_h = w.dilation[0];
  g.dil_w = w.dilation[1];
  g.pad_top = rows.pad_before;
  g.pad_left = cols.pad_before;
  return g;
}

// dst[i] = src[i] for i < n, converting to A. Patch runs are often a handful
// of values (a 3x3 filter over one channel copies 3 per filter row), where a
// plain loop beats a call to memmove.
template <typename T, typename A>
inline void CopyRun(const T* src, int64_t n, A* dst) {
  if (!std::is_same_v<T, A> || n <= 16) {
    for (int64_t i = 0; i < n; ++i) dst[i] = static_cast<A>(src[i]);
  } else {
    std::copy_n(src, n, dst);
  }
}

// Writes patch rows [row0, row0 + count) of input channels [c0, c0 + group_c)
// into `patches` ([count, patch_size], converted to A); row = (b * out_h + oy)
// * out_w + ox, column = (i * k_w + j) * group_c + c, zero where the tap falls
// in the padding. A filter row whose taps are adjacent in memory (undilated,
// one group, inside the image) is one run of k_w * in_c values.
template <typename T, typename A>
void Im2Col(const OpKernelContext& ctx, const ConvGeometry& g, const T* in, int64_t c0,
            int64_t row0, int64_t count, A* patches) {
  const int64_t gc = g.group_c, k = g.k_h * g.k_w * gc;
  const bool contiguous = g.dil_w == 1 && gc == g.in_c;
  ParallelFor(ctx, count, static_cast<double>(k), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t row = row0 + r;
      const int64_t ox = row % g.out_w, oy = (row / g.out_w) % g.out_h;
      const T* image = in + row / (g.out_w * g.out_h) * g.in_h * g.in_w * g.in_c + c0;
      const int64_t ix0 = ox * g.stride_w - g.pad_left;
      const bool row_inside = contiguous && ix0 >= 0 && ix0 + g.k_w <= g.in_w;
      A* dst = patches + r * k;
      for (int64_t i = 0; i < g.k_h; ++i) {
        const int64_t iy = oy * g.stride_h - g.pad_top + i * g.dil_h;
        if (iy < 0 || iy >= g.in_h) {
          std::fill_n(dst, g.k_w * gc, A(0));
          dst += g.k_w * gc;
          continue;
        }
        if (row_inside) {
          CopyRun(image + (iy * g.in_w + ix0) * g.in_c, g.k_w * gc, dst);
          dst += g.k_w * gc;
          continue;
        }
        for (int64_t j = 0; j < g.k_w; ++j, dst += gc) {
          const int64_t ix = ix0 + j * g.dil_w;
          if (ix < 0 || ix >= g.in_w) {
            std::fill_n(dst, gc, A(0));
            continue;
          }
          CopyRun(image + (iy * g.in_w + ix) * g.in_c, gc, dst);
        }
      }
    }
  });
}

// dst[r, dst_col0 + c] = src[r, src_col0 + c] for r < rows, c < cols, converting
// the element type; both matrices are row-major with the given row lengths.
template <typename From, typename To>
void CopyColumns(const OpKernelContext& ctx, const From* src, int64_t src_ld, int64_t src_col0,
                 int64_t rows, int64_t cols, To* dst, int64_t dst_ld, int64_t dst_col0) {
  ParallelFor(ctx, rows, static_cast<double>(cols), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        dst[r * dst_ld + dst_col0 + c] = static_cast<To>(src[r * src_ld + src_col0 + c]);
      }
    }
  });
}

// Patch rows per chunk: as many as fit in kPatchBytes, at least one, at most `rows`.
inline int64_t PatchChunkRows(int64_t patch_size, int64_t element_bytes, int64_t rows) {
  return std::clamp<int64_t>(kPatchBytes / (patch_size * element_bytes), 1,
                             std::max<int64_t>(rows, 1));
}

}  // namespace gradserve
