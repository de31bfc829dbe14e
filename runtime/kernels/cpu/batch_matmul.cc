// CPU kernel for BatchMatMulV2 (graph/ops/math_ops.cc): one Gemm per output
// matrix, with NumPy broadcasting over the batch dimensions. adj_x / adj_y are
// transposes (the registered types are real).
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/matmul.h"

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
      : OpKernel(node),
        adj_x_(node.GetAttr<bool>("adj_x").value_or(false)),
        adj_y_(node.GetAttr<bool>("adj_y").value_or(false)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (x.rank() < 2 || y.rank() < 2) {
      return absl::InvalidArgumentError(absl::StrCat("BatchMatMulV2 needs rank >= 2 inputs, got ",
                                                     x.shape().DebugString(), " and ",
                                                     y.shape().DebugString()));
    }
    const int rx = x.rank(), ry = y.rank();
    const int64_t m = x.dim(adj_x_ ? rx - 1 : rx - 2), k = x.dim(adj_x_ ? rx - 2 : rx - 1);
    const int64_t kb = y.dim(adj_y_ ? ry - 1 : ry - 2), n = y.dim(adj_y_ ? ry - 2 : ry - 1);
    if (k != kb) {
      return absl::InvalidArgumentError(
          absl::StrCat("inner dimensions differ: ", x.shape().DebugString(), (adj_x_ ? "^T" : ""),
                       " x ", y.shape().DebugString(), (adj_y_ ? "^T" : "")));
    }
    const Shape xb(x.shape().dims().subspan(0, rx - 2)), yb(y.shape().dims().subspan(0, ry - 2));
    absl::StatusOr<Shape> batch = BroadcastShapes(xb, yb);
    if (!batch.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("batch dimensions: ", batch.status().message()));
    }
    Shape out_shape = *batch;
    out_shape.AddDim(m);
    out_shape.AddDim(n);
    Tensor* out = ctx.allocate_output(0, out_shape, DTypeOf<T>::value);
    if (out->num_elements() == 0) return absl::OkStatus();
    std::vector<int64_t> xi, yi;
    BatchIndices(xb, yb, *batch, &xi, &yi);
    const T* xd = x.data<T>();
    const T* yd = y.data<T>();
    T* od = out->data<T>();
    for (size_t i = 0; i < xi.size(); ++i) {
      GS_RETURN_IF_ERROR(Gemm<T>(ctx, adj_x_, adj_y_, m, n, k, xd + xi[i] * m * k,
                                 yd + yi[i] * k * n, od + static_cast<int64_t>(i) * m * n));
    }
    return absl::OkStatus();
  }

 private:
  bool adj_x_, adj_y_;
};

}  // namespace

absl::Status RegisterCpuBatchMatMulKernel(KernelRegistry& r) {
  return RegisterKernelClass<BatchMatMulKernel>(
      r, "BatchMatMulV2", TypeList<float, double, half, bfloat16, int32_t, int64_t>{});
}

}  // namespace gradserve
