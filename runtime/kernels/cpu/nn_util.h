// Helpers shared by the CPU kernels of the nn family (nn_ops.cc, conv_ops.cc,
// pooling_ops.cc, batch_norm_ops.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

// The type arithmetic is carried out in: float for the 16-bit floats (their own
// arithmetic rounds at every step), T itself otherwise.
template <typename T>
using AccumType =
    std::conditional_t<std::is_same_v<T, half> || std::is_same_v<T, bfloat16>, float, T>;

// Runs fn(begin, end) over [0, n) on the device's thread pool, in blocks sized
// from `cost_per_unit` (estimated cycles per unit of work).
inline void ParallelFor(const OpKernelContext& ctx, int64_t n, double cost_per_unit,
                        const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  EigenCpu(ctx).parallelFor(n, Eigen::TensorOpCost(0, 0, cost_per_unit),
                            [&fn](Eigen::Index begin, Eigen::Index end) { fn(begin, end); });
}

// Registration of the family's kernels, split by file; RegisterCpuNnKernels
// (nn_ops.cc) calls each.
// Registers a windowed kernel (convolution, pooling and their gradients) for
// each T: parses the window attrs once per node and rejects NCHW, which the CPU
// kernels do not implement (as in TensorFlow). `make.template operator()<T>(node,
// window)` returns the new kernel.
template <typename... Ts, typename Make>
absl::Status RegisterWindowKernel(KernelRegistry& r, const char* op, TypeList<Ts...> types,
                                  bool conv, Make make) {
  return RegisterTyped(
      r, op, types,
      [op, conv, make]<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        GS_ASSIGN_OR_RETURN(Window2D w, ParseWindow2D(node, conv));
        if (!w.channels_last) {
          return absl::UnimplementedError(absl::StrCat(
              op, " on the CPU supports only data_format NHWC (as in TensorFlow), got NCHW"));
        }
        return std::unique_ptr<OpKernel>(make.template operator()<T>(node, w));
      });
}

absl::Status RegisterCpuConvKernels(KernelRegistry& r);
absl::Status RegisterCpuPoolingKernels(KernelRegistry& r);
absl::Status RegisterCpuBatchNormKernels(KernelRegistry& r);

}  // namespace gradserve
