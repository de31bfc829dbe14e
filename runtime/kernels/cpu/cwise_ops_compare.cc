// CPU kernels for the comparison and logic ops of graph/ops/math_ops.cc: Equal,
// Less, Greater (bool outputs, NumPy broadcasting) and LogicalAnd.
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

struct EqualFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a == b;
  }
};
struct LessFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a < b;
  }
};
struct GreaterFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a > b;
  }
};
struct LogicalAndFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a && b;
  }
};

template <typename F>
struct Compare {
  template <typename T>
  using Kernel = BinaryKernel<T, F, bool>;
};

// With incompatible_shape_error=false, shapes that cannot broadcast compare
// unequal: the output is a scalar false (TensorFlow's semantics).
template <typename T>
class EqualKernel final : public OpKernel {
 public:
  explicit EqualKernel(const Node& node)
      : OpKernel(node),
        strict_(node.GetAttr<bool>("incompatible_shape_error").value_or(true)),
        equal_(node) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    if (!strict_ && !BroadcastShapes(ctx.input(0).shape(), ctx.input(1).shape()).ok()) {
      ctx.allocate_output(0, Shape{}, DType::kBool)->scalar<bool>() = false;
      return absl::OkStatus();
    }
    return equal_.Compute(ctx);
  }

 private:
  bool strict_;
  BinaryKernel<T, EqualFn, bool> equal_;
};

}  // namespace

absl::Status RegisterCpuComparisonKernels(KernelRegistry& r) {
  using Real = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<EqualKernel>(
      r, "Equal",
      TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, bool>{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Compare<LessFn>::Kernel>(r, "Less", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Compare<GreaterFn>::Kernel>(r, "Greater", Real{}));
  using LogicalAndKernel = BinaryKernel<bool, LogicalAndFn>;
  GS_RETURN_IF_ERROR(RegisterUntyped<LogicalAndKernel>(r, "LogicalAnd"));
  return absl::OkStatus();
}

}  // namespace gradserve
