// CPU kernels for Conv2D's gradients (graph/ops/nn_grad_ops.cc):
// Conv2DBackpropInput and Conv2DBackpropFilter, NHWC only like Conv2D
// (conv_ops.cc), grouped convolution included.
//
// Note [Conv2D gradients as GEMM]: the forward convolution is
// y[pixels, OC] = patches[pixels, K] x W[K, OC] with K = KH*KW*C (Note [Conv2D
// as GEMM] in conv_ops.cc), so its gradients are the two transposed products
//   dW[K, OC]         = patches^T x dy     (Conv2DBackpropFilter)
//   dpatches[pixels, K] = dy x W^T          (Conv2DBackpropInput)
// followed, for the input, by col2im: every patch row is scattered back and
// added onto the input pixels it was copied from (taps in the padding are
// dropped). Both run in chunks of patch rows so the scratch stays near
// kPatchBytes: the filter gradient adds each chunk's product into the result;
// the input gradient's chunks hold whole images where one fits, and col2im
// runs one image per thread so no two threads add into the same values. A 1x1
// stride-1 unpadded convolution, or a filter covering the whole image, needs
// neither im2col nor col2im: the input (gradient) is the patch matrix. Each
// group is one GEMM over its channels, with its columns of dy and W copied into
// contiguous matrices, as in the forward. The 16-bit floats are widened to
// float for the GEMMs and accumulated in float, then rounded once.
#include <algorithm>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/conv_util.h"

namespace gradserve {
namespace {

Shape ShapeFromSizes(const Tensor& sizes) {
  Shape s;
  for (int64_t i = 0; i < sizes.num_elements(); ++i) s.AddDim(sizes.data<int32_t>()[i]);
  return s;
}

template <typename A>
void Zero(const OpKernelContext& ctx, A* p, int64_t n) {
  ParallelFor(ctx, n, 1.0,
              [p](int64_t begin, int64_t end) { std::fill(p + begin, p + end, A(0)); });
}

// dst[r, dst_col0 + c] (+)= src[r, c] for r < rows, c < cols: assigns when
// `add` is false; src is [rows, cols], dst row-major with rows of dst_ld.
template <typename A>
void AccumulateColumns(const OpKernelContext& ctx, const A* src, int64_t rows, int64_t cols, A* dst,
                       int64_t dst_ld, int64_t dst_col0, bool add) {
  ParallelFor(ctx, rows, static_cast<double>(cols), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const A* s = src + r * cols;
      A* d = dst + r * dst_ld + dst_col0;
      for (int64_t c = 0; c < cols; ++c) d[c] = add ? d[c] + s[c] : s[c];
    }
  });
}

// The inverse of Im2Col (conv_util.h): adds patch rows [row0, row0 + count)
// (`dpatches`, [count, patch_size]) onto input channels [c0, c0 + group_c) of
// dx, dropping the taps that fall in the padding. Threads split the images the
// rows belong to, so each value of dx has one writer.
template <typename A>
void Col2Im(const OpKernelContext& ctx, const ConvGeometry& g, const A* dpatches, int64_t c0,
            int64_t row0, int64_t count, A* dx) {
  const int64_t gc = g.group_c, k = g.patch_size(), per_image = g.out_h * g.out_w;
  const int64_t first = row0 / per_image, images = (row0 + count - 1) / per_image + 1 - first;
  const bool contiguous = g.dil_w == 1 && gc == g.in_c;  // as in Im2Col
  const double cost = static_cast<double>(std::min(count, per_image) * k);
  ParallelFor(ctx, images, cost, [&](int64_t begin, int64_t end) {
    for (int64_t b = first + begin; b < first + end; ++b) {
      A* image = dx + b * g.in_h * g.in_w * g.in_c + c0;
      const int64_t r_end = std::min(row0 + count, (b + 1) * per_image);
      for (int64_t row = std::max(row0, b * per_image); row < r_end; ++row) {
        const int64_t ox = row % g.out_w, oy = (row / g.out_w) % g.out_h;
        const int64_t ix0 = ox * g.stride_w - g.pad_left;
        const bool row_inside = contiguous && ix0 >= 0 && ix0 + g.k_w <= g.in_w;
        const A* src = dpatches + (row - row0) * k;
        for (int64_t i = 0; i < g.k_h; ++i, src += g.k_w * gc) {
          const int64_t iy = oy * g.stride_h - g.pad_top + i * g.dil_h;
          if (iy < 0 || iy >= g.in_h) continue;
          if (row_inside) {
            A* dst = image + (iy * g.in_w + ix0) * g.in_c;
            for (int64_t c = 0; c < g.k_w * gc; ++c) dst[c] += src[c];
            continue;
          }
          for (int64_t j = 0; j < g.k_w; ++j) {
            const int64_t ix = ix0 + j * g.dil_w;
            if (ix < 0 || ix >= g.in_w) continue;
            A* dst = image + (iy * g.in_w + ix) * g.in_c;
            for (int64_t c = 0; c < gc; ++c) dst[c] += src[j * gc + c];
          }
        }
      }
    }
  });
}

// Per group gi, the filter's columns [gi*n, (gi+1)*n) as a contiguous [k, n]
// matrix of A (groups x [k, n] in all).
template <typename T, typename A>
Tensor SplitFilter(const OpKernelContext& ctx, const ConvGeometry& g, const T* filter) {
  const int64_t groups = g.groups(), k = g.patch_size(), n = g.out_c / groups;
  Tensor filters(DTypeOf<A>::value, Shape{groups, k, n});
  for (int64_t gi = 0; gi < groups; ++gi) {
    CopyColumns(ctx, filter, g.out_c, gi * n, k, n, filters.data<A>() + gi * k * n, n, 0);
  }
  return filters;
}

// dx (input-shaped) from the filter and dy; see Note [Conv2D gradients as GEMM].
template <typename T>
absl::Status RunBackpropInput(const OpKernelContext& ctx, const ConvGeometry& g, const T* filter,
                              const T* dy, T* dx) {
  using A = AccumType<T>;
  constexpr bool kSame = std::is_same_v<T, A>;
  const int64_t groups = g.groups(), k = g.patch_size(), n = g.out_c / groups;
  const int64_t rows = g.pixels(), dx_size = g.batch * g.in_h * g.in_w * g.in_c;
  if constexpr (kSame) {
    if (g.Pointwise()) return Gemm<A>(ctx, false, true, rows, k, g.out_c, dy, filter, dx);
    if (g.WholeImage()) return Gemm<A>(ctx, false, true, g.batch, k, g.out_c, dy, filter, dx);
  }
  // dy, the filter and dx are used as they lie unless widened or split by group.
  const bool direct = kSame && groups == 1;
  Tensor filters, dy_cols, dx_acc;  // split filter; one chunk of a group's dy; widened dx
  if (!direct) filters = SplitFilter<T, A>(ctx, g, filter);
  A* dxa = nullptr;
  if constexpr (kSame) {
    dxa = dx;
  } else {
    dx_acc = Tensor(DTypeOf<A>::value, Shape{dx_size});
    dxa = dx_acc.data<A>();
  }
  Zero(ctx, dxa, dx_size);
  // Chunks of whole images where one image's patches fit the scratch.
  const int64_t per_image = g.out_h * g.out_w;
  int64_t chunk = PatchChunkRows(k, sizeof(A), rows);
  if (per_image > 0 && chunk >= per_image) chunk = chunk / per_image * per_image;
  Tensor dpatches(DTypeOf<A>::value, Shape{chunk, k});
  if (!direct) dy_cols = Tensor(DTypeOf<A>::value, Shape{chunk, n});
  for (int64_t row0 = 0; row0 < rows; row0 += chunk) {
    const int64_t count = std::min(chunk, rows - row0);
    for (int64_t gi = 0; gi < groups; ++gi) {
      const A* dyg = nullptr;  // [count, n]
      const A* wg = nullptr;   // [k, n]
      if constexpr (kSame) {
        if (direct) {
          dyg = dy + row0 * g.out_c;
          wg = filter;
        }
      }
      if (!direct) {
        CopyColumns(ctx, dy + row0 * g.out_c, g.out_c, gi * n, count, n, dy_cols.data<A>(), n, 0);
        dyg = dy_cols.data<A>();
        wg = filters.data<A>() + gi * k * n;
      }
      GS_RETURN_IF_ERROR(Gemm<A>(ctx, false, true, count, k, n, dyg, wg, dpatches.data<A>()));
      Col2Im(ctx, g, dpatches.data<A>(), gi * g.group_c, row0, count, dxa);
    }
  }
  if (!kSame) CopyColumns(ctx, dxa, g.in_c, 0, dx_size / g.in_c, g.in_c, dx, g.in_c, 0);
  return absl::OkStatus();
}

// dW (filter-shaped) from the input and dy; see Note [Conv2D gradients as GEMM].
template <typename T>
absl::Status RunBackpropFilter(const OpKernelContext& ctx, const ConvGeometry& g, const T* in,
                               const T* dy, T* dw) {
  using A = AccumType<T>;
  constexpr bool kSame = std::is_same_v<T, A>;
  const int64_t groups = g.groups(), k = g.patch_size(), n = g.out_c / groups;
  const int64_t rows = g.pixels();
  if constexpr (kSame) {
    if (g.Pointwise()) return Gemm<A>(ctx, true, false, k, g.out_c, rows, in, dy, dw);
    if (g.WholeImage()) return Gemm<A>(ctx, true, false, k, g.out_c, g.batch, in, dy, dw);
  }
  const bool direct = kSame && groups == 1;  // dy used as it lies
  Tensor dw_acc, dy_cols, partial;  // widened dW; one chunk of a group's dy; a chunk's product
  A* dwa = nullptr;
  if constexpr (kSame) {
    dwa = dw;
  } else {
    dw_acc = Tensor(DTypeOf<A>::value, Shape{k, g.out_c});
    dwa = dw_acc.data<A>();
  }
  if (rows == 0) Zero(ctx, dwa, k * g.out_c);
  // Equal chunks, so the last GEMM is not a sliver.
  const int64_t max_chunk = PatchChunkRows(k, sizeof(A), rows);
  const int64_t chunks = (rows + max_chunk - 1) / max_chunk;
  const int64_t chunk = chunks == 0 ? 1 : (rows + chunks - 1) / chunks;
  Tensor patches(DTypeOf<A>::value, Shape{std::min(chunk, rows), k});
  if (!direct) dy_cols = Tensor(DTypeOf<A>::value, Shape{chunk, n});
  if (groups > 1 || chunks > 1) partial = Tensor(DTypeOf<A>::value, Shape{k, n});
  for (int64_t row0 = 0; row0 < rows; row0 += chunk) {
    const int64_t count = std::min(chunk, rows - row0);
    for (int64_t gi = 0; gi < groups; ++gi) {
      Im2Col(ctx, g, in, gi * g.group_c, row0, count, patches.data<A>());
      const A* dyg = nullptr;  // [count, n]
      if constexpr (kSame) {
        if (direct) dyg = dy + row0 * g.out_c;
      }
      if (!direct) {
        CopyColumns(ctx, dy + row0 * g.out_c, g.out_c, gi * n, count, n, dy_cols.data<A>(), n, 0);
        dyg = dy_cols.data<A>();
      }
      // One group's first chunk can go straight into dW; the rest are added.
      A* target = groups == 1 && row0 == 0 ? dwa : partial.data<A>();
      GS_RETURN_IF_ERROR(Gemm<A>(ctx, true, false, k, n, count, patches.data<A>(), dyg, target));
      if (target != dwa) AccumulateColumns(ctx, target, k, n, dwa, g.out_c, gi * n, row0 > 0);
    }
  }
  if (!kSame) CopyColumns(ctx, dwa, g.out_c, 0, k, g.out_c, dw, g.out_c, 0);
  return absl::OkStatus();
}

template <typename T, bool kInput>
class ConvBackpropKernel final : public OpKernel {
 public:
  ConvBackpropKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& sizes = ctx.input(kInput ? 0 : 1);
    GS_CHECK_ARG(sizes.rank() == 1 && sizes.num_elements() == 4,
                 kInput ? "input_sizes" : "filter_sizes", " must be a vector of 4 elements, got ",
                 sizes.shape().DebugString());
    const Shape in_shape = kInput ? ShapeFromSizes(sizes) : ctx.input(0).shape();
    const Shape f_shape = kInput ? ctx.input(1).shape() : ShapeFromSizes(sizes);
    const Tensor& dy = ctx.input(2);
    GS_CHECK_ARG(in_shape.rank() == 4 && f_shape.rank() == 4, "input and filter must be 4-D, got ",
                 in_shape.DebugString(), " and ", f_shape.DebugString());
    const int64_t in_c = in_shape.dim(3), fc = f_shape.dim(2), out_c = f_shape.dim(3);
    GS_CHECK_ARG(fc > 0 && in_c % fc == 0, "depth of input (", in_c,
                 ") is not a multiple of input depth of filter (", fc, ")");
    const int64_t groups = in_c / fc;
    GS_CHECK_ARG(groups > 0 && out_c % groups == 0, "depth of output (", out_c,
                 ") is not a multiple of the number of groups (", groups, ")");
    GS_ASSIGN_OR_RETURN(ConvGeometry g, MakeConvGeometry(in_shape, f_shape, w_));
    const Shape out_shape{g.batch, g.out_h, g.out_w, out_c};
    GS_CHECK_ARG(dy.shape() == out_shape, "out_backprop must have shape ", out_shape.DebugString(),
                 ", got ", dy.shape().DebugString());
    Tensor* out = ctx.allocate_output(0, kInput ? in_shape : f_shape, DTypeOf<T>::value);
    if (out->num_elements() == 0) return absl::OkStatus();
    T* result = out->data<T>();
    if (f_shape.num_elements() == 0) {  // nothing flows back: an empty sum
      std::fill_n(result, out->num_elements(), T(0));
      return absl::OkStatus();
    }
    const Tensor& other = ctx.input(kInput ? 1 : 0);  // the filter, or the input
    if constexpr (kInput) {
      return RunBackpropInput<T>(ctx, g, other.data<T>(), dy.data<T>(), result);
    } else {
      return RunBackpropFilter<T>(ctx, g, other.data<T>(), dy.data<T>(), result);
    }
  }

 private:
  Window2D w_;
};

template <bool kInput>
absl::Status RegisterConvBackprop(KernelRegistry& r, const char* op) {
  return RegisterWindowKernel(r, op, TypeList<float, double, half, bfloat16>{}, /*conv=*/true,
                              []<typename T>(const Node& node, const Window2D& w) {
                                return new ConvBackpropKernel<T, kInput>(node, w);
                              });
}

}  // namespace

absl::Status RegisterCpuConvGradKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterConvBackprop<true>(r, "Conv2DBackpropInput"));
  GS_RETURN_IF_ERROR(RegisterConvBackprop<false>(r, "Conv2DBackpropFilter"));
  return absl::OkStatus();
}

}  // namespace gradserve
