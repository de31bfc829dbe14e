#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

const Eigen::ThreadPoolDevice& EigenCpu(const OpKernelContext& ctx) {
  // Kernels registered for kDeviceCpu only ever run on a CpuDevice.
  return static_cast<const CpuDevice*>(ctx.device())->eigen_device();
}

bool CollapseBroadcast(std::initializer_list<const Shape*> operands, const Shape& out,
                       BroadcastDims* dims) {
  *dims = BroadcastDims{};
  const int rank = out.rank();
  int prev_state = -1;  // bit k: operand k is broadcast along this run
  for (int i = 0; i < rank; ++i) {
    const int64_t od = out.dim(i);
    if (od == 1) continue;  // size-1 dims carry nothing
    int64_t sizes[3] = {1, 1, 1};
    int state = 0, k = 0;
    for (const Shape* s : operands) {
      const int j = s->rank() - rank + i;
      sizes[k] = j >= 0 ? s->dim(j) : 1;
      if (sizes[k] != od) state |= 1 << k;
      ++k;
    }
    // Merge runs of dims where each operand either broadcasts or doesn't.
    if (state != prev_state) {
      if (dims->rank == kMaxBroadcastRank) return false;
      const int r = dims->rank++;
      dims->out[r] = 1;
      for (k = 0; k < static_cast<int>(operands.size()); ++k)
        dims->in[k][r] = dims->bcast[k][r] = 1;
      prev_state = state;
    }
    const int r = dims->rank - 1;
    dims->out[r] *= od;
    for (k = 0; k < static_cast<int>(operands.size()); ++k) {
      dims->in[k][r] *= sizes[k];
      dims->bcast[k][r] *= sizes[k] == od ? 1 : od;
    }
  }
  if (dims->rank == 0) {
    dims->rank = 1;
    dims->out[0] = 1;
    for (int k = 0; k < static_cast<int>(operands.size()); ++k)
      dims->in[k][0] = dims->bcast[k][0] = 1;
  }
  return true;
}

BCast ComputeBCast(const Shape& x, const Shape& y) {
  BCast b;
  absl::StatusOr<Shape> out = BroadcastShapes(x, y);
  if (!out.ok()) return b;
  b.valid = true;
  b.output_shape = *std::move(out);
  b.collapsed = CollapseBroadcast({&x, &y}, b.output_shape, &b.dims);
  return b;
}

}  // namespace gradserve
