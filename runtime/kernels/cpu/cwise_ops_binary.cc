// CPU kernels for the arithmetic binary ops of graph/ops/math_ops.cc: Add, AddV2,
// Sub, Mul, RealDiv, Pow, Maximum, Minimum (NumPy broadcasting via BinaryKernel).
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

using functor::AddFn;
using functor::DivFn;
using functor::MaxFn;
using functor::MinFn;
using functor::MulFn;
using functor::PowFn;
using functor::SubFn;

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
