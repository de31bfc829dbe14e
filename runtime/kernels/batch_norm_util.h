// The attrs and input checks of FusedBatchNormV3 and FusedBatchNormGradV3,
// shared by the CPU kernels (runtime/kernels/cpu/batch_norm_ops.cc, whose file
// comment gives the math) and the CUDA kernels (runtime/kernels/cuda/
// pooling_ops.cc). Defined in runtime/kernels/cpu/batch_norm_util.cc.
//
// Plain host C++ over shapes: nothing is read from device memory. Thread-safe
// (no shared state). Input errors are InvalidArgument with the CPU kernels'
// messages, not prefixed with the node's name (the CUDA kernels add it with
// Annotate(status, name())).
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "runtime/kernel.h"

namespace gradserve {

// The attrs of a batch-norm node, read once when its kernel is made.
struct BatchNormParams {
  float epsilon;
  float avg_factor;  // the forward op's exponential_avg_factor (1 for the gradient)
  bool is_training;
  int rank;    // 4, or 5 for NDHWC / NCDHW
  int c_axis;  // the channel axis
};

// `node`'s attrs: epsilon, is_training, data_format (NHWC, NCHW, NDHWC or
// NCDHW) and, for FusedBatchNormV3, exponential_avg_factor. The error of a
// missing or mistyped attr, as Node::GetAttr gives it.
absl::StatusOr<BatchNormParams> BatchNormParamsOf(const Node& node);

// Checks FusedBatchNormV3's inputs (x, scale, offset, mean, variance) in
// `ctx`: x has rank p.rank, the others are vectors of x's channel count (mean
// and variance of any length when training with factor 1, which never reads
// them, as TensorFlow allows). Returns the channel count.
absl::StatusOr<int64_t> CheckBatchNormInputs(const BatchNormParams& p, const OpKernelContext& ctx);

// Checks FusedBatchNormGradV3's inputs (y_backprop, x, scale, reserve_space_1,
// reserve_space_2) in `ctx`: x has rank p.rank and y_backprop its shape, the
// others are vectors of x's channel count. Returns the channel count.
absl::StatusOr<int64_t> CheckBatchNormGradInputs(const BatchNormParams& p,
                                                 const OpKernelContext& ctx);

}  // namespace gradserve
