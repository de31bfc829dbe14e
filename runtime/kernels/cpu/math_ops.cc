// CPU kernels for math ops (graph/ops/math_ops.cc): unary element-wise ops and
// MatMul here; binary ops, comparisons, Cast and BatchMatMulV2 in the files
// named below, split so each compiles in reasonable time.
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cpu/matmul.h"

namespace gradserve {

// Defined in cwise_ops_binary.cc, cwise_ops_compare.cc, cwise_ops_cast.cc and
// batch_matmul.cc; registered from RegisterCpuMathKernels only.
absl::Status RegisterCpuBinaryKernels(KernelRegistry& r);
absl::Status RegisterCpuComparisonKernels(KernelRegistry& r);
absl::Status RegisterCpuCastKernel(KernelRegistry& r);
absl::Status RegisterCpuBatchMatMulKernel(KernelRegistry& r);
// Backward helper ops (math_grad_ops.cc).
absl::Status RegisterCpuMathGradKernels(KernelRegistry& r);

namespace {

using functor::AbsFn;
using functor::ExpFn;
using functor::LogFn;
using functor::NegFn;
using functor::RsqrtFn;
using functor::SqrtFn;
using functor::SquareFn;

// Unary<F>::Kernel is the kernel class template RegisterKernelClass expects.
template <typename F>
struct Unary {
  template <typename T>
  using Kernel = UnaryKernel<T, F>;
};

template <typename T>
class MatMulKernel final : public OpKernel {
 public:
  explicit MatMulKernel(const Node& node)
      : OpKernel(node),
        transpose_a_(node.GetAttr<bool>("transpose_a").value_or(false)),
        transpose_b_(node.GetAttr<bool>("transpose_b").value_or(false)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.rank() != 2 || b.rank() != 2) {
      return absl::InvalidArgumentError(absl::StrCat("MatMul needs matrices, got ",
                                                     a.shape().DebugString(), " and ",
                                                     b.shape().DebugString()));
    }
    const int64_t m = a.dim(transpose_a_ ? 1 : 0), k = a.dim(transpose_a_ ? 0 : 1);
    const int64_t kb = b.dim(transpose_b_ ? 1 : 0), n = b.dim(transpose_b_ ? 0 : 1);
    if (k != kb) {
      return absl::InvalidArgumentError(absl::StrCat(
          "inner dimensions differ: ", a.shape().DebugString(), (transpose_a_ ? "^T" : ""), " x ",
          b.shape().DebugString(), (transpose_b_ ? "^T" : "")));
    }
    Tensor* c = ctx.allocate_output(0, Shape{m, n}, DTypeOf<T>::value);
    return Gemm<T>(ctx, transpose_a_, transpose_b_, m, n, k, a.data<T>(), b.data<T>(),
                   c->data<T>());
  }

 private:
  bool transpose_a_, transpose_b_;
};

}  // namespace

// AddN: the element-wise sum of N same-shaped tensors (gradients fanning in).
template <typename T>
class AddNKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& first = ctx.input(0);
    for (int i = 1; i < ctx.num_inputs(); ++i) {
      GS_CHECK_ARG(ctx.input(i).shape() == first.shape(), "input ", i, " has shape ",
                   ctx.input(i).shape().DebugString(), " but input 0 has ",
                   first.shape().DebugString());
    }
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, first.shape(), DTypeOf<T>::value);
    auto sum = out->flat<T>();
    const auto& d = EigenCpu(ctx);
    if (!out->SharesBufferWith(first)) sum.device(d) = first.flat<T>();
    for (int i = 1; i < ctx.num_inputs(); ++i) sum.device(d) += ctx.input(i).flat<T>();
    return absl::OkStatus();
  }
};

absl::Status RegisterCpuMathKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterKernelClass<AddNKernel>(
      r, "AddN",
      TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>{}));
  using Floats = TypeList<float, double, half, bfloat16>;
  using Signed = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<NegFn>::Kernel>(r, "Neg", Signed{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<AbsFn>::Kernel>(r, "Abs", Signed{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<SquareFn>::Kernel>(r, "Square", Signed{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<ExpFn>::Kernel>(r, "Exp", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<LogFn>::Kernel>(r, "Log", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<SqrtFn>::Kernel>(r, "Sqrt", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Unary<RsqrtFn>::Kernel>(r, "Rsqrt", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<MatMulKernel>(
      r, "MatMul", TypeList<float, double, half, bfloat16, int32_t, int64_t>{}));
  GS_RETURN_IF_ERROR(RegisterCpuBinaryKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuComparisonKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuCastKernel(r));
  GS_RETURN_IF_ERROR(RegisterCpuBatchMatMulKernel(r));
  GS_RETURN_IF_ERROR(RegisterCpuMathGradKernels(r));
  return absl::OkStatus();
}

}  // namespace gradserve
