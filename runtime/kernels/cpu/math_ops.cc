// CPU kernels for math ops (graph/ops/math_ops.cc).
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cpu/matmul.h"

namespace gradserve {
namespace {

struct AddFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) { return a + b; }
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
          "inner dimensions differ: ", a.shape().DebugString(), (transpose_a_ ? "^T" : ""),
          " x ", b.shape().DebugString(), (transpose_b_ ? "^T" : "")));
    }
    Tensor* c = ctx.allocate_output(0, Shape{m, n}, DTypeOf<T>::value);
    return Gemm<T>(ctx, transpose_a_, transpose_b_, m, n, k, a.data<T>(), b.data<T>(),
                   c->data<T>());
  }

 private:
  bool transpose_a_, transpose_b_;
};

template <typename T> using AddKernel = BinaryKernel<T, AddFn>;

}  // namespace

absl::Status RegisterCpuMathKernels(KernelRegistry& r) {
  using Numeric = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<AddKernel>(r, "Add", Numeric{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<AddKernel>(r, "AddV2", Numeric{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<MatMulKernel>(
      r, "MatMul", TypeList<float, double, half, bfloat16, int32_t, int64_t>{}));
  return absl::OkStatus();
}

}  // namespace gradserve
