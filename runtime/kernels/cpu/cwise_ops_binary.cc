// CPU kernels for the arithmetic binary ops of graph/ops/math_ops.cc: Add, AddV2,
// Sub, Mul, RealDiv, Pow, Maximum, Minimum (NumPy broadcasting via BinaryKernel).
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

template <typename Expr>
using ScalarOf = std::remove_const_t<typename Eigen::internal::traits<Expr>::Scalar>;

struct AddFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a + b;
  }
};
struct SubFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a - b;
  }
};
struct MulFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a * b;
  }
};
struct DivFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a / b;
  }
};
// Maximum and Minimum propagate NaN, as TensorFlow's do.
struct MaxFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a.template cwiseMax<Eigen::PropagateNaN>(b);
  }
};
struct MinFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    return a.template cwiseMin<Eigen::PropagateNaN>(b);
  }
};

// Integer power by squaring. The arithmetic is unsigned so that overflow wraps
// (defined behaviour) instead of being undefined; exponents are checked >= 0 first.
template <typename T>
struct IntPowOp {
  T operator()(T base, T exp) const {
    using U = std::make_unsigned_t<T>;
    U result = 1, b = static_cast<U>(base);
    for (T e = exp; e > 0; e >>= 1) {
      if (e & 1) result *= b;
      b *= b;
    }
    return static_cast<T>(result);
  }
};
struct PowFn {
  template <typename A, typename B>
  static auto Apply(const A& a, const B& b) {
    using T = ScalarOf<A>;
    if constexpr (std::is_integral_v<T>) {
      return a.binaryExpr(b, IntPowOp<T>());
    } else {
      return a.binaryExpr(b, Eigen::internal::scalar_pow_op<T, T>());
    }
  }
};

template <typename F>
struct Binary {
  template <typename T>
  using Kernel = BinaryKernel<T, F>;
};

// TensorFlow rejects negative integer exponents rather than returning 0 or 1/x.
template <typename T>
class IntPowKernel final : public OpKernel {
 public:
  explicit IntPowKernel(const Node& node) : OpKernel(node), pow_(node) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    for (T e : ctx.input(1).span<const T>()) {
      if (e < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("integers to negative integer powers are not allowed (exponent ", e, ")"));
      }
    }
    return pow_.Compute(ctx);
  }

 private:
  BinaryKernel<T, PowFn> pow_;
};

}  // namespace

absl::Status RegisterCpuBinaryKernels(KernelRegistry& r) {
  using Real = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>;
  using Floats = TypeList<float, double, half, bfloat16>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<AddFn>::Kernel>(r, "Add", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<AddFn>::Kernel>(r, "AddV2", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<SubFn>::Kernel>(r, "Sub", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<MulFn>::Kernel>(r, "Mul", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<MaxFn>::Kernel>(r, "Maximum", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<MinFn>::Kernel>(r, "Minimum", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<DivFn>::Kernel>(r, "RealDiv", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Binary<PowFn>::Kernel>(r, "Pow", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<IntPowKernel>(r, "Pow", TypeList<int32_t, int64_t>{}));
  return absl::OkStatus();
}

}  // namespace gradserve
