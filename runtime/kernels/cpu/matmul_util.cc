// runtime/kernels/matmul_util.h, for the CPU and the CUDA kernels alike (this
// file is host C++ only and is built on either).
#include "runtime/kernels/matmul_util.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

BatchMatMulAdjoints BatchMatMulAdjointsOf(const Node& node) {
  return {.adj_x = node.GetAttr<bool>("adj_x").value_or(false),
          .adj_y = node.GetAttr<bool>("adj_y").value_or(false)};
}

absl::StatusOr<BatchMatMulSizes> CheckBatchMatMul(const Shape& x, const Shape& y,
                                                  const BatchMatMulAdjoints& adj) {
  const bool adj_x = adj.adj_x, adj_y = adj.adj_y;
  GS_CHECK_ARG(x.rank() >= 2 && y.rank() >= 2, "BatchMatMulV2 needs rank >= 2 inputs, got ",
               x.DebugString(), " and ", y.DebugString());
  const int rx = x.rank(), ry = y.rank();
  BatchMatMulSizes s{.m = x.dim(adj_x ? rx - 1 : rx - 2),
                     .n = y.dim(adj_y ? ry - 2 : ry - 1),
                     .k = x.dim(adj_x ? rx - 2 : rx - 1),
                     .x_batch = Shape(x.dims().subspan(0, rx - 2)),
                     .y_batch = Shape(y.dims().subspan(0, ry - 2))};
  const int64_t kb = y.dim(adj_y ? ry - 1 : ry - 2);
  GS_CHECK_ARG(s.k == kb, "inner dimensions differ: ", x.DebugString(), (adj_x ? "^T" : ""), " x ",
               y.DebugString(), (adj_y ? "^T" : ""));
  absl::StatusOr<Shape> batch = BroadcastShapes(s.x_batch, s.y_batch);
  GS_CHECK_ARG(batch.ok(), "batch dimensions: ", batch.status().message());
  s.batch = *batch;
  s.out = *batch;
  s.out.AddDim(s.m);
  s.out.AddDim(s.n);
  return s;
}

}  // namespace gradserve
