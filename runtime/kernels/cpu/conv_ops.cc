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
#include "runtime/kernels/cpu/conv_util.h"

namespace gradserve {
namespace {

template <typename T>
absl::Status RunConv(const OpKernelContext& ctx, const ConvGeometry& g, const T* in,
                     const T* filter, T* out) {
  using A = AccumType<T>;
  const int64_t groups = g.groups(), k = g.patch_size(), n = g.out_c / groups;
  const int64_t rows = g.pixels();
  if constexpr (std::is_same_v<T, A>) {
    if (g.Pointwise()) return Gemm<A>(ctx, false, false, rows, n, k, in, filter, out);
    if (g.WholeImage()) return Gemm<A>(ctx, false, false, g.batch, n, k, in, filter, out);
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
  const int64_t chunk = PatchChunkRows(k, sizeof(A), rows);
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
    const int64_t in_c = input.dim(3), group_c = filter.dim(2), out_c = filter.dim(3);
    GS_CHECK_ARG(in_c % group_c == 0, "depth of input (", in_c,
                 ") is not a multiple of input depth of filter (", group_c, ")");
    const int64_t groups = in_c / group_c;
    GS_CHECK_ARG(groups > 0 && out_c % groups == 0, "depth of output (", out_c,
                 ") is not a multiple of the number of groups (", groups, ")");
    GS_ASSIGN_OR_RETURN(ConvGeometry g, MakeConvGeometry(input.shape(), filter.shape(), w_));
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
