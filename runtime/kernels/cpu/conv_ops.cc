// CPU kernel for Conv2D (graph/ops/nn_ops.cc).
//
// Note [Conv2D as GEMM]: each output pixel's receptive field (KH x KW x C input
// values, zero where it overhangs the padding) is copied into one row of a patch
// matrix, in the filter's own HWIO order; the output [pixels, OC] is then
// patches [pixels, KH*KW*C] x filter [KH*KW*C, OC], the filter read as a matrix
// as it lies. Rows are built in chunks so the scratch stays near kPatchBytes
// whatever the image size. A 1x1 stride-1 unpadded convolution, and a filter
// covering the whole image, need no patches: the input already is the patch
// matrix. The 16-bit floats are widened to float while the patches are copied
// and multiplied by the float GEMM (oneDNN sgemm), which is faster and more
// accurate than a contraction in half precision.
//
// Grouped convolution (input depth = groups x filter input depth, as TensorFlow
// allows): group g's output channels [g*OC/groups, (g+1)*OC/groups) see only its
// input channels [g*FC, (g+1)*FC). Each group is one GEMM over patches of its
// channels, with its filter columns copied into a contiguous matrix and its
// output columns scattered into place.
#include <algorithm>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/matmul.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

constexpr int64_t kPatchBytes = 8 << 20;

struct ConvGeometry {
  int64_t batch, in_h, in_w, in_c;
  int64_t k_h, k_w, group_c, out_c;  // group_c: the filter's input depth
  int64_t out_h, out_w;
  int64_t stride_h, stride_w, dil_h, dil_w, pad_top, pad_left;
};

// Writes patch rows [row0, row0 + count) of input channels [c0, c0 + group_c)
// into `patches`; row = (b * out_h + oy) * out_w + ox.
template <typename T, typename A>
void Im2Col(const OpKernelContext& ctx, const ConvGeometry& g, const T* in, int64_t c0,
            int64_t row0, int64_t count, A* patches) {
  const int64_t gc = g.group_c, k = g.k_h * g.k_w * gc;
  ParallelFor(ctx, count, static_cast<double>(k), [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t row = row0 + r;
      const int64_t ox = row % g.out_w, oy = (row / g.out_w) % g.out_h;
      const T* image = in + row / (g.out_w * g.out_h) * g.in_h * g.in_w * g.in_c + c0;
      A* dst = patches + r * k;
      for (int64_t i = 0; i < g.k_h; ++i) {
        const int64_t iy = oy * g.stride_h - g.pad_top + i * g.dil_h;
        if (iy < 0 || iy >= g.in_h) {
          std::fill_n(dst, g.k_w * gc, A(0));
          dst += g.k_w * gc;
          continue;
        }
        for (int64_t j = 0; j < g.k_w; ++j, dst += gc) {
          const int64_t ix = ox * g.stride_w - g.pad_left + j * g.dil_w;
          if (ix < 0 || ix >= g.in_w) {
            std::fill_n(dst, gc, A(0));
            continue;
          }
          const T* src = image + (iy * g.in_w + ix) * g.in_c;
          if constexpr (std::is_same_v<T, A>) {
            std::copy_n(src, gc, dst);
          } else {
            for (int64_t c = 0; c < gc; ++c) dst[c] = static_cast<A>(src[c]);
          }
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

template <typename T>
absl::Status RunConv(const OpKernelContext& ctx, const ConvGeometry& g, const T* in,
                     const T* filter, T* out) {
  using A = AccumType<T>;
  const int64_t groups = g.in_c / g.group_c;
  const int64_t k = g.k_h * g.k_w * g.group_c, n = g.out_c / groups;
  const int64_t rows = g.batch * g.out_h * g.out_w;
  if constexpr (std::is_same_v<T, A>) {
    const bool unpadded = groups == 1 && g.pad_top == 0 && g.pad_left == 0;
    if (unpadded && g.k_h == 1 && g.k_w == 1 && g.stride_h == 1 && g.stride_w == 1 &&
        g.out_h == g.in_h && g.out_w == g.in_w) {
      return Gemm<A>(ctx, false, false, rows, n, k, in, filter, out);
    }
    if (unpadded && g.k_h == g.in_h && g.k_w == g.in_w && g.out_h == 1 && g.out_w == 1 &&
        g.dil_h == 1 && g.dil_w == 1) {
      return Gemm<A>(ctx, false, false, g.batch, n, k, in, filter, out);
    }
  }
  // The filter and the output are used as they lie unless widened or split by group.
  const bool direct = std::is_same_v<T, A> && groups == 1;
  Tensor filters, results;  // per group: the [k, n] filter; one chunk's [count, n] output
  if (!direct) {
    filters = Tensor(DTypeOf<A>::value, Shape{groups, k, n});
    for (int64_t gi = 0; gi < groups; ++gi) {
      CopyColumns(ctx, filter, g.out_c, gi * n, k, n, filters.data<A>() + gi * k * n, n, 0);
    }
  }
  const int64_t chunk =
      std::clamp<int64_t>(kPatchBytes / (k * static_cast<int64_t>(sizeof(A))), 1, rows);
  Tensor patches(DTypeOf<A>::value, Shape{chunk, k});
  if (!direct) results = Tensor(DTypeOf<A>::value, Shape{chunk, n});
  for (int64_t row0 = 0; row0 < rows; row0 += chunk) {
    const int64_t count = std::min(chunk, rows - row0);
    for (int64_t gi = 0; gi < groups; ++gi) {
      Im2Col(ctx, g, in, gi * g.group_c, row0, count, patches.data<A>());
      if constexpr (std::is_same_v<T, A>) {
        if (direct) {
          GS_RETURN_IF_ERROR(Gemm<A>(ctx, false, false, count, n, k, patches.data<A>(), filter,
                                     out + row0 * g.out_c));
          continue;
        }
      }
      GS_RETURN_IF_ERROR(Gemm<A>(ctx, false, false, count, n, k, patches.data<A>(),
                                 filters.data<A>() + gi * k * n, results.data<A>()));
      CopyColumns(ctx, results.data<A>(), n, 0, count, n, out + row0 * g.out_c, g.out_c, gi * n);
    }
  }
  return absl::OkStatus();
}

template <typename T>
class Conv2DKernel final : public OpKernel {
 public:
  Conv2DKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& input = ctx.input(0);
    const Tensor& filter = ctx.input(1);
    GS_CHECK_ARG(input.rank() == 4, "input must be 4-dimensional, got ",
                 input.shape().DebugString());
    GS_CHECK_ARG(filter.rank() == 4, "filter must be 4-dimensional, got ",
                 filter.shape().DebugString());
    GS_CHECK_ARG(filter.num_elements() > 0, "filter must not have zero elements, got ",
                 filter.shape().DebugString());
    ConvGeometry g{.batch = input.dim(0), .in_h = input.dim(1), .in_w = input.dim(2),
                   .in_c = input.dim(3), .k_h = filter.dim(0), .k_w = filter.dim(1),
                   .group_c = filter.dim(2), .out_c = filter.dim(3)};
    GS_CHECK_ARG(g.in_c % g.group_c == 0, "depth of input (", g.in_c,
                 ") is not a multiple of input depth of filter (", g.group_c, ")");
    const int64_t groups = g.in_c / g.group_c;
    GS_CHECK_ARG(groups > 0 && g.out_c % groups == 0, "depth of output (", g.out_c,
                 ") is not a multiple of the number of groups (", groups, ")");
    GS_ASSIGN_OR_RETURN(WindowDim rows, ComputeWindowDim(g.in_h, g.k_h, w_.dilation[0],
                                                         w_.stride[0], w_.padding, w_.pad[0]));
    GS_ASSIGN_OR_RETURN(WindowDim cols, ComputeWindowDim(g.in_w, g.k_w, w_.dilation[1],
                                                         w_.stride[1], w_.padding, w_.pad[1]));
    g.out_h = rows.output;
    g.out_w = cols.output;
    g.stride_h = w_.stride[0];
    g.stride_w = w_.stride[1];
    g.dil_h = w_.dilation[0];
    g.dil_w = w_.dilation[1];
    g.pad_top = rows.pad_before;
    g.pad_left = cols.pad_before;
    Tensor* out =
        ctx.allocate_output(0, Shape{g.batch, g.out_h, g.out_w, g.out_c}, DTypeOf<T>::value);
    if (out->num_elements() == 0) return absl::OkStatus();
    return RunConv<T>(ctx, g, input.data<T>(), filter.data<T>(), out->data<T>());
  }

 private:
  Window2D w_;
};

}  // namespace

absl::Status RegisterCpuConvKernels(KernelRegistry& r) {
  return RegisterWindowKernel(
      r, "Conv2D", TypeList<float, double, half, bfloat16, int32_t>{}, /*conv=*/true,
      []<typename T>(const Node& node, const Window2D& w) { return new Conv2DKernel<T>(node, w); });
}

}  // namespace gradserve
