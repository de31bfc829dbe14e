#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {

const Eigen::ThreadPoolDevice& EigenCpu(const OpKernelContext& ctx) {
  // Kernels registered for kDeviceCpu only ever run on a CpuDevice.
  return static_cast<const CpuDevice*>(ctx.device())->eigen_device();
}

BCast ComputeBCast(const Shape& x, const Shape& y) {
  BCast b;
  absl::StatusOr<Shape> out = BroadcastShapes(x, y);
  if (!out.ok()) return b;
  b.output_shape = *out;
  const int rank = out->rank();
  // Per output dim: the size in x and y (1 where broadcast).
  std::vector<int64_t> xs(rank), ys(rank);
  for (int i = 0; i < rank; ++i) {
    const int ix = x.rank() - rank + i, iy = y.rank() - rank + i;
    xs[i] = ix >= 0 ? x.dim(ix) : 1;
    ys[i] = iy >= 0 ? y.dim(iy) : 1;
  }
  // Merge runs of dims where x (and y) either both broadcast or both don't.
  auto push = [&](int64_t xd, int64_t yd) {
    const int64_t od = std::max(xd, yd);
    b.x_reshape.push_back(xd);
    b.y_reshape.push_back(yd);
    b.x_bcast.push_back(xd == od ? 1 : od);
    b.y_bcast.push_back(yd == od ? 1 : od);
  };
  int prev_state = -1;  // bit 0: x broadcasts, bit 1: y broadcasts
  for (int i = 0; i < rank; ++i) {
    const int64_t od = std::max(xs[i], ys[i]);
    if (od == 1) continue;  // size-1 dims carry nothing
    const int state = (xs[i] != od ? 1 : 0) | (ys[i] != od ? 2 : 0);
    if (state == prev_state) {
      b.x_reshape.back() *= xs[i];
      b.y_reshape.back() *= ys[i];
      b.x_bcast.back() *= (xs[i] == od ? 1 : od);
      b.y_bcast.back() *= (ys[i] == od ? 1 : od);
    } else {
      push(xs[i], ys[i]);
      prev_state = state;
    }
  }
  if (b.x_reshape.empty()) push(1, 1);
  b.valid = true;
  return b;
}

}  // namespace gradserve
