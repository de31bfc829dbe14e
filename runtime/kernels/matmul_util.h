// The shape checks of BatchMatMulV2, shared by the CPU kernel
// (runtime/kernels/cpu/batch_matmul.cc) and the CUDA kernel
// (runtime/kernels/cuda/matmul_ops.cc). Defined in
// runtime/kernels/cpu/matmul_util.cc.
//
// Plain host C++ over shapes; thread-safe (no shared state). Errors are
// InvalidArgument with the CPU kernel's messages, not prefixed with the node's
// name (the CUDA kernel adds it with Annotate(status, name())).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "graph/shape.h"

namespace gradserve {

// BatchMatMulV2's attrs adj_x and adj_y: whether x and y are adjointed
// (transposed: the registered types are real); false when missing.
struct BatchMatMulAdjoints {
  bool adj_x = false;
  bool adj_y = false;
};
BatchMatMulAdjoints BatchMatMulAdjointsOf(const Node& node);

// The sizes of one BatchMatMulV2: out[b] = op(x[b]) [m, k] x op(y[b]) [k, n]
// for each b of the broadcast batch, op transposing an adjointed operand.
struct BatchMatMulSizes {
  int64_t m, n, k;
  Shape x_batch, y_batch;  // x's and y's dims but the last two
  Shape batch;             // x_batch and y_batch broadcast (NumPy rules)
  Shape out;               // batch + [m, n]
};

// The sizes of BatchMatMulV2(x, y) under `adj`, after checking that x and y
// have rank >= 2, that their inner dimensions agree and that their batch
// dimensions broadcast.
absl::StatusOr<BatchMatMulSizes> CheckBatchMatMul(const Shape& x, const Shape& y,
                                                  const BatchMatMulAdjoints& adj);

}  // namespace gradserve
