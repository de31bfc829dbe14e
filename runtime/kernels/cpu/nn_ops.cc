// CPU kernels for neural-network ops (graph/ops/nn_ops.cc).
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

absl::Status RegisterCpuNnKernels(KernelRegistry& r) { return absl::OkStatus(); }

}  // namespace gradserve
