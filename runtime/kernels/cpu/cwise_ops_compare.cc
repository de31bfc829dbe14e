// CPU kernels for the comparison and logic ops of graph/ops/math_ops.cc: Equal,
// Less, Greater (bool outputs, NumPy broadcasting) and LogicalAnd.
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

using functor::GreaterFn;
using functor::LessFn;
using functor::LogicalAndFn;

// Equal on the CPU (cwise.h's EqualKernel with its default device).
template <typename T>
using CpuEqualKernel = EqualKernel<T>;

template <typename F>
struct Compare {
  template <typename T>
  using Kernel = BinaryKernel<T, F, bool>;
};

}  // namespace

absl::Status RegisterCpuComparisonKernels(KernelRegistry& r) {
  using Real = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<CpuEqualKernel>(
      r, "Equal",
      TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t, bool>{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Compare<LessFn>::Kernel>(r, "Less", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Compare<GreaterFn>::Kernel>(r, "Greater", Real{}));
  using LogicalAndKernel = BinaryKernel<bool, LogicalAndFn>;
  GS_RETURN_IF_ERROR(RegisterUntyped<LogicalAndKernel>(r, "LogicalAnd"));
  return absl::OkStatus();
}

}  // namespace gradserve
