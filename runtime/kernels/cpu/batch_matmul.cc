// CPU kernel for BatchMatMulV2 (graph/ops/math_ops.cc): one Gemm per output
// matrix, with NumPy broadcasting over the batch dimensions. adj_x / adj_y are
// transposes (the registered types are real).
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/matmul.h"
#include "runtime/kernels/matmul_util.h"

namespace gradserve {
namespace {

// For each output batch matrix, the index of the x and y matrix it multiplies.
void BatchIndices(const Shape& xb, const Shape& yb, const Shape& out, std::vector<int64_t>* xi,
                  std::vector<int64_t>* yi) {
  const int rank = out.rank();
  const int64_t count = out.num_elements();
  xi->assign(count, 0);
  yi->assign(count, 0);
  // Strides of x and y in matrices, 0 along broadcast dims.
  std::vector<int64_t> xs(rank, 0), ys(rank, 0);
  int64_t xstride = 1, ystride = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int dx = xb.rank() - rank + d, dy = yb.rank() - rank + d;
    const int64_t xd = dx >= 0 ? xb.dim(dx) : 1, yd = dy >= 0 ? yb.dim(dy) : 1;
    if (xd != 1) xs[d] = xstride;
    if (yd != 1) ys[d] = ystride;
    xstride *= xd;
    ystride *= yd;
  }
  for (int64_t i = 0; i < count; ++i) {
    int64_t rem = i;
    for (int d = rank - 1; d >= 0; --d) {
      const int64_t idx = rem % out.dim(d);
      rem /= out.dim(d);
      (*xi)[i] += idx * xs[d];
      (*yi)[i] += idx * ys[d];
    }
  }
}

template <typename T>
class BatchMatMulKernel final : public OpKernel {
 public:
  explicit BatchMatMulKernel(const Node& node)
      : OpKernel(node), adj_(BatchMatMulAdjointsOf(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    GS_ASSIGN_OR_RETURN(const BatchMatMulSizes s, CheckBatchMatMul(x.shape(), y.shape(), adj_));
    const int64_t m = s.m, n = s.n, k = s.k;
    Tensor* out = ctx.allocate_output(0, s.out, DTypeOf<T>::value);
    if (out->num_elements() == 0) return absl::OkStatus();
    std::vector<int64_t> xi, yi;
    BatchIndices(s.x_batch, s.y_batch, s.batch, &xi, &yi);
    const T* xd = x.data<T>();
    const T* yd = y.data<T>();
    T* od = out->data<T>();
    for (size_t i = 0; i < xi.size(); ++i) {
      GS_RETURN_IF_ERROR(Gemm<T>(ctx, adj_.adj_x, adj_.adj_y, m, n, k, xd + xi[i] * m * k,
                                 yd + yi[i] * k * n, od + static_cast<int64_t>(i) * m * n));
    }
    return absl::OkStatus();
  }

 private:
  BatchMatMulAdjoints adj_;
};

}  // namespace

absl::Status RegisterCpuBatchMatMulKernel(KernelRegistry& r) {
  return RegisterKernelClass<BatchMatMulKernel>(
      r, "BatchMatMulV2", TypeList<float, double, half, bfloat16, int32_t, int64_t>{});
}

}  // namespace gradserve
