// CPU kernels for the backward helper ops of the math family
// (graph/ops/math_ops.cc): BroadcastGradientArgs.
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernel.h"

namespace gradserve {
namespace {

// TensorFlow's BCast rule, walking both shapes from the last dimension (the
// shorter one padded with leading 1s): an operand whose dimension is 1 where the
// broadcast result's is not is reduced there; where both are 1, both are.
template <typename T>
class BroadcastGradientArgsKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& s0 = ctx.input(0);
    const Tensor& s1 = ctx.input(1);
    GS_CHECK_ARG(s0.rank() == 1 && s1.rank() == 1, "BroadcastGradientArgs needs vectors, got ",
                 s0.shape().DebugString(), " and ", s1.shape().DebugString());
    const int64_t n0 = s0.num_elements(), n1 = s1.num_elements(), n = std::max(n0, n1);
    std::vector<T> r0, r1;
    for (int64_t i = 0; i < n; ++i) {  // i: output axis
      const int64_t j0 = i - (n - n0), j1 = i - (n - n1);
      const int64_t d0 = j0 < 0 ? 1 : static_cast<int64_t>(s0.data<T>()[j0]);
      const int64_t d1 = j1 < 0 ? 1 : static_cast<int64_t>(s1.data<T>()[j1]);
      GS_CHECK_ARG(d0 >= 0 && d1 >= 0, "BroadcastGradientArgs: negative dimension");
      if (d0 == d1) {
        if (d0 == 1) {
          r0.push_back(static_cast<T>(i));
          r1.push_back(static_cast<T>(i));
        }
      } else if (d0 == 1) {
        r0.push_back(static_cast<T>(i));
      } else if (d1 == 1) {
        r1.push_back(static_cast<T>(i));
      } else {
        return absl::InvalidArgumentError(absl::StrCat(
            "Incompatible shapes in BroadcastGradientArgs: dimension ", i, " is ", d0, " vs ", d1));
      }
    }
    for (int k = 0; k < 2; ++k) {
      const std::vector<T>& r = k == 0 ? r0 : r1;
      Tensor* out =
          ctx.allocate_output(k, Shape{static_cast<int64_t>(r.size())}, DTypeOf<T>::value);
      std::copy(r.begin(), r.end(), out->data<T>());
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status RegisterCpuMathGradKernels(KernelRegistry& r) {
  return RegisterKernelClass<BroadcastGradientArgsKernel>(r, "BroadcastGradientArgs",
                                                          TypeList<int32_t, int64_t>{});
}

}  // namespace gradserve
