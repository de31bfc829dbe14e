// Helpers shared by the CPU kernels of the nn family (nn_ops.cc, conv_ops.cc,
// pooling_ops.cc, batch_norm_ops.cc).
#pragma once

#include <cstdint>
#include <functional>
#include <type_traits>

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
absl::Status RegisterCpuConvKernels(KernelRegistry& r);
absl::Status RegisterCpuPoolingKernels(KernelRegistry& r);
absl::Status RegisterCpuBatchNormKernels(KernelRegistry& r);

}  // namespace gradserve
