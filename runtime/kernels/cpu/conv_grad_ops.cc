// CPU kernels for Conv2D's gradients (graph/ops/nn_grad_ops.cc):
// Conv2DBackpropInput and Conv2DBackpropFilter, NHWC only like Conv2D
// (conv_ops.cc), grouped convolution included. Both walk the forward
// convolution's (output pixel, filter tap) pairs directly,
//   out[b,oy,ox,oc] += in[b,iy,ix,g*FC+ci] * filter[ky,kx,ci,oc],
// and accumulate the transposed products in AccumType; they are plain loops,
// meant for fine-tuning small models, not tuned like the forward GEMM.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

Shape ShapeFromSizes(const Tensor& sizes) {
  Shape s;
  for (int64_t i = 0; i < sizes.num_elements(); ++i) s.AddDim(sizes.data<int32_t>()[i]);
  return s;
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
    const int64_t batch = in_shape.dim(0), in_h = in_shape.dim(1), in_w = in_shape.dim(2),
                  in_c = in_shape.dim(3);
    const int64_t k_h = f_shape.dim(0), k_w = f_shape.dim(1), fc = f_shape.dim(2),
                  out_c = f_shape.dim(3);
    GS_CHECK_ARG(fc > 0 && in_c % fc == 0, "depth of input (", in_c,
                 ") is not a multiple of input depth of filter (", fc, ")");
    const int64_t groups = in_c / fc;
    GS_CHECK_ARG(out_c % groups == 0, "depth of output (", out_c,
                 ") is not a multiple of the number of groups (", groups, ")");
    GS_ASSIGN_OR_RETURN(WindowDim rows, ComputeWindowDim(in_h, k_h, w_.dilation[0], w_.stride[0],
                                                         w_.padding, w_.pad[0]));
    GS_ASSIGN_OR_RETURN(WindowDim cols, ComputeWindowDim(in_w, k_w, w_.dilation[1], w_.stride[1],
                                                         w_.padding, w_.pad[1]));
    const Shape out_shape{batch, rows.output, cols.output, out_c};
    GS_CHECK_ARG(dy.shape() == out_shape, "out_backprop must have shape ", out_shape.DebugString(),
                 ", got ", dy.shape().DebugString());
    const Shape& result_shape = kInput ? in_shape : f_shape;
    const Tensor& other = ctx.input(kInput ? 1 : 0);  // the filter, or the input
    std::vector<A> acc(result_shape.num_elements(), A(0));
    const T* d = dy.data<T>();
    const T* o = other.data<T>();
    const int64_t per_group = out_c / groups;
    for (int64_t b = 0; b < batch; ++b) {
      for (int64_t oy = 0; oy < rows.output; ++oy) {
        for (int64_t ox = 0; ox < cols.output; ++ox) {
          const T* drow = d + ((b * rows.output + oy) * cols.output + ox) * out_c;
          for (int64_t ky = 0; ky < k_h; ++ky) {
            const int64_t iy = oy * w_.stride[0] - rows.pad_before + ky * w_.dilation[0];
            if (iy < 0 || iy >= in_h) continue;
            for (int64_t kx = 0; kx < k_w; ++kx) {
              const int64_t ix = ox * w_.stride[1] - cols.pad_before + kx * w_.dilation[1];
              if (ix < 0 || ix >= in_w) continue;
              const int64_t in_base = ((b * in_h + iy) * in_w + ix) * in_c;
              const int64_t f_base = (ky * k_w + kx) * fc * out_c;
              for (int64_t oc = 0; oc < out_c; ++oc) {
                const A g = static_cast<A>(drow[oc]);
                const int64_t c0 = oc / per_group * fc;
                for (int64_t ci = 0; ci < fc; ++ci) {
                  const int64_t i_in = in_base + c0 + ci, i_f = f_base + ci * out_c + oc;
                  if constexpr (kInput) {
                    acc[i_in] += g * static_cast<A>(o[i_f]);
                  } else {
                    acc[i_f] += g * static_cast<A>(o[i_in]);
                  }
                }
              }
            }
          }
        }
      }
    }
    Tensor* out = ctx.allocate_output(0, result_shape, DTypeOf<T>::value);
    T* y = out->data<T>();
    for (int64_t i = 0; i < out->num_elements(); ++i) y[i] = static_cast<T>(acc[i]);
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
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
