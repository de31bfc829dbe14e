// CPU kernels for the backward ops of the nn family (graph/ops/nn_grad_ops.cc):
// activation gradients and BiasAddGrad.
#include <string>
#include <type_traits>
#include <vector>

#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cpu/nn_util.h"
#include "runtime/kernels/reduction_util.h"

namespace gradserve {
namespace {

// The functors' inputs: (gradients, features) for ReluGrad and Relu6Grad,
// (gradients, outputs) for EluGrad, (y, dy) for SigmoidGrad and TanhGrad.
using functor::EluGradFn;
using functor::Relu6GradFn;
using functor::ReluGradFn;
using functor::SigmoidGradFn;
using functor::TanhGradFn;

template <typename T>
using ReluGradKernel = BinaryKernel<T, ReluGradFn>;
template <typename T>
using Relu6GradKernel = BinaryKernel<T, Relu6GradFn>;
template <typename T>
using EluGradKernel = BinaryKernel<T, EluGradFn>;
template <typename T>
using SigmoidGradKernel = BinaryKernel<T, SigmoidGradFn>;
template <typename T>
using TanhGradKernel = BinaryKernel<T, TanhGradFn>;

// The sum of out_backprop over every axis but the channel axis, viewing it as
// [outer, channels, inner] (NHWC: inner = 1; NCHW: inner = the spatial size).
template <typename T>
class BiasAddGradKernel final : public OpKernel {
 public:
  explicit BiasAddGradKernel(const Node& node) : OpKernel(node), nchw_(DataFormatIsNchw(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& g = ctx.input(0);
    GS_ASSIGN_OR_RETURN(const AxisSplit split, BiasAddGradSplit(g.shape(), nchw_));
    const auto [outer, channels, inner] = split;
    std::vector<A> sum(channels, A(0));
    const T* x = g.data<T>();
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t c = 0; c < channels; ++c) {
        const T* row = x + (o * channels + c) * inner;
        A s = 0;
        for (int64_t i = 0; i < inner; ++i) s += static_cast<A>(row[i]);
        sum[c] += s;
      }
    }
    Tensor* out = ctx.allocate_output(0, Shape{channels}, DTypeOf<T>::value);
    T* y = out->data<T>();
    for (int64_t c = 0; c < channels; ++c) y[c] = static_cast<T>(sum[c]);
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
  bool nchw_;
};

}  // namespace

absl::Status RegisterCpuPoolingGradKernels(KernelRegistry& r);  // pooling_grad_ops.cc
absl::Status RegisterCpuConvGradKernels(KernelRegistry& r);     // conv_grad_ops.cc

absl::Status RegisterCpuNnGradKernels(KernelRegistry& r) {
  using Floats = TypeList<float, double, half, bfloat16>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<ReluGradKernel>(r, "ReluGrad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Relu6GradKernel>(r, "Relu6Grad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<EluGradKernel>(r, "EluGrad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<SigmoidGradKernel>(r, "SigmoidGrad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<TanhGradKernel>(r, "TanhGrad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<BiasAddGradKernel>(r, "BiasAddGrad", Floats{}));
  GS_RETURN_IF_ERROR(RegisterCpuPoolingGradKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuConvGradKernels(r));
  return absl::OkStatus();
}

}  // namespace gradserve
