// CPU kernel for Cast (graph/ops/math_ops.cc) between every numeric type and bool.
// Conversions are C++'s: float -> integer truncates toward zero, integer ->
// narrower integer wraps, x -> bool is x != 0. The conversion function is chosen
// once per node from (SrcT, DstT).
#include <type_traits>

#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

using CastFn = void (*)(const Eigen::ThreadPoolDevice& d, const Tensor& x, Tensor* y);

// Truncate=true uses functor::ClearLowMantissaBits (TensorFlow's LSBZeroSetter).
template <typename In, typename Out, bool kTruncate>
void CastImpl(const Eigen::ThreadPoolDevice& d, const Tensor& x, Tensor* y) {
  CastEval<Eigen::ThreadPoolDevice, In, Out, kTruncate>::Run(d, x.data<In>(), y->data<Out>(),
                                                             x.num_elements());
}

// nullptr when no conversion is needed (SrcT == DstT).
template <typename In, typename Out>
CastFn PickCast(bool truncate) {
  if constexpr (std::is_same_v<In, Out>) {
    return nullptr;
  } else if constexpr (functor::kCastTruncates<In, Out>) {
    return truncate ? &CastImpl<In, Out, true> : &CastImpl<In, Out, false>;
  } else {
    return &CastImpl<In, Out, false>;
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
