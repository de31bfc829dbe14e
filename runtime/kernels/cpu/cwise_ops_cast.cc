// CPU kernel for Cast (graph/ops/math_ops.cc) between every numeric type and bool.
// Conversions are C++'s: float -> integer truncates toward zero, integer ->
// narrower integer wraps, x -> bool is x != 0. The conversion function is chosen
// once per node from (SrcT, DstT).
#include <cstring>
#include <type_traits>

#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

using CastFn = void (*)(const Eigen::ThreadPoolDevice& d, const Tensor& x, Tensor* y);

template <typename T>
constexpr int MantissaBits() {
  if constexpr (std::is_same_v<T, double>) return 52;
  if constexpr (std::is_same_v<T, float>) return 23;
  if constexpr (std::is_same_v<T, half>) return 10;
  if constexpr (std::is_same_v<T, bfloat16>) return 7;
  return 0;
}

// Truncate=true: clears the input mantissa bits the output cannot hold, so the
// rounding conversion that follows is exact and the value is truncated instead
// (TensorFlow's LSBZeroSetter). NaNs are left alone so they stay NaN.
template <typename In, typename Out>
struct ClearLowMantissaBits {
  In operator()(In v) const {
    using Bits = std::conditional_t<sizeof(In) == 8, uint64_t, uint32_t>;
    constexpr int kDrop = MantissaBits<In>() - MantissaBits<Out>();
    if (v != v) return v;
    Bits bits;
    std::memcpy(&bits, &v, sizeof(v));
    bits &= ~((Bits{1} << kDrop) - 1);
    std::memcpy(&v, &bits, sizeof(v));
    return v;
  }
};

template <typename In, typename Out>
void CastImpl(const Eigen::ThreadPoolDevice& d, const Tensor& x, Tensor* y) {
  y->flat<Out>().device(d) = x.flat<In>().template cast<Out>();
}

template <typename In, typename Out>
void TruncatingCastImpl(const Eigen::ThreadPoolDevice& d, const Tensor& x, Tensor* y) {
  y->flat<Out>().device(d) =
      x.flat<In>().unaryExpr(ClearLowMantissaBits<In, Out>()).template cast<Out>();
}

// nullptr when no conversion is needed (SrcT == DstT).
template <typename In, typename Out>
CastFn PickCast(bool truncate) {
  if constexpr (std::is_same_v<In, Out>) {
    return nullptr;
  } else if constexpr ((std::is_same_v<In, float> ||
                        std::is_same_v<In, double>)&&MantissaBits<Out>() > 0 &&
                       MantissaBits<Out>() < MantissaBits<In>()) {
    return truncate ? &TruncatingCastImpl<In, Out> : &CastImpl<In, Out>;
  } else {
    return &CastImpl<In, Out>;
  }
}

class CastKernel final : public OpKernel {
 public:
  CastKernel(const Node& node, DType dst, CastFn fn) : OpKernel(node), dst_(dst), fn_(fn) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    if (fn_ == nullptr) {
      ctx.set_output(0, x);
      return absl::OkStatus();
    }
    Tensor* y = ctx.allocate_output(0, x.shape(), dst_);
    fn_(EigenCpu(ctx), x, y);
    return absl::OkStatus();
  }

 private:
  DType dst_;
  CastFn fn_;
};

}  // namespace

absl::Status RegisterCpuCastKernel(KernelRegistry& r) {
  return RegisterTyped(
      r, "Cast",
      TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, bool>{},
      []<typename In>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        GS_ASSIGN_OR_RETURN(DType dst, node.GetAttr<DType>("DstT"));
        GS_ASSIGN_OR_RETURN(bool truncate, node.GetAttr<bool>("Truncate"));
        CastFn fn = nullptr;
        GS_RETURN_IF_ERROR(DispatchDType(dst, [&]<typename Out>() -> absl::Status {
          fn = PickCast<In, Out>(truncate);
          return absl::OkStatus();
        }));
        return std::unique_ptr<OpKernel>(new CastKernel(node, dst, fn));
      },
      "SrcT");
}

}  // namespace gradserve
