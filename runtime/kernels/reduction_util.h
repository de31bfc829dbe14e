// The host-side checks and plans of the reductions, shared by the CPU kernels
// (runtime/kernels/cpu/reduction_ops.cc, nn_ops.cc, nn_grad_ops.cc) and the
// CUDA kernels (runtime/kernels/cuda/reduction_ops.cc, cwise_ops.cc): which
// axes a reduction reduces and the passes it takes (Note [Reduction
// collapsing] in runtime/kernels/cpu/reduction_ops.cc), ArgMax's axis, and the
// channel-axis view of BiasAdd and of its gradient BiasAddGrad (a reduction to
// the channel axis). Defined in runtime/kernels/cpu/reduction_util.cc.
//
// Plain host C++ over shapes and host-memory tensors: no device, nothing read
// from device memory. Every function is thread-safe (no shared state). Errors
// are InvalidArgument with the CPU kernels' messages, not prefixed with the
// node's name; the CUDA kernels that prefix theirs add it with
// Annotate(status, name()).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "graph/shape.h"
#include "graph/tensor.h"

namespace gradserve {

// A shape seen as [outer, size, inner] around one axis: outer is the product
// of the dims before it, inner of those after it (1 when there are none).
struct AxisSplit {
  int64_t outer = 1;
  int64_t size = 1;
  int64_t inner = 1;
};

// `shape` around `axis`; requires 0 <= axis < shape.rank().
AxisSplit SplitAtAxis(const Shape& shape, int axis);

// ---- Sum, Mean, Max, Min ----

// The reduced axes as a bitmap over `rank` dims. `axes` (reduction_indices,
// host memory) is int32 or int64 of any shape, read flattened; each value is
// in [-rank, rank) (negative counts from the end) and names no dim twice.
absl::StatusOr<std::vector<bool>> ReducedAxes(const Tensor& axes, int rank);

// The reduction's output shape: the kept dims of `in`, and each reduced dim as
// 1 when `keep_dims`, else dropped.
Shape ReducedShape(const Shape& in, const std::vector<bool>& reduced, bool keep_dims);

// A run of adjacent dims that are all kept or all reduced, as one dim.
struct DimGroup {
  int64_t size;
  bool reduced;
};

// `shape`'s dims with the size-1 ones dropped and adjacent ones of the same
// kind merged: alternating kept/reduced groups (Note [Reduction collapsing]).
// Empty when every dim has size 1.
std::vector<DimGroup> CollapseDims(const Shape& shape, const std::vector<bool>& reduced);

// Whether any group is reduced (false: the reduction is a reshape, or there is
// nothing to reduce).
bool AnyReduced(const std::vector<DimGroup>& groups);

// One pass of a reduction: its input seen as [outer, r, inner], reduced over
// r into [outer, inner]. `last` when no reduced group is left after it.
struct ReducePass {
  int64_t outer, r, inner;
  bool last;
};

// Takes the first reduced group out of `groups` as a pass, merging its kept
// neighbours, so that `groups` then describes the pass's output. Requires
// AnyReduced(groups). The passes, taken until `last`, reduce every group.
ReducePass NextReducePass(std::vector<DimGroup>& groups);

// ---- ArgMax ----

// ArgMax's axis in [0, rank) for an input of shape `x`: `dimension` (host
// memory) is an int16, int32 or int64 scalar in [-rank, rank), x has rank >= 1
// and a non-empty dim at the axis.
absl::StatusOr<int> ArgMaxAxis(const Shape& x, const Tensor& dimension);

// ---- BiasAdd, BiasAddGrad ----

// Whether `node`'s data_format attr is NCHW (the channel axis is 1); NHWC (the
// channel axis is the last) when it is anything else or missing.
bool DataFormatIsNchw(const Node& node);

// BiasAdd's value around its channel axis (NHWC: inner = 1; NCHW: inner = the
// spatial size), after checking that value has rank >= 2 (NHWC) or >= 3
// (NCHW) and that bias is a vector of one element per channel.
absl::StatusOr<AxisSplit> BiasAddSplit(const Shape& value, const Shape& bias, bool nchw);

// BiasAddGrad's out_backprop around its channel axis, after checking its rank
// as BiasAddSplit checks value's.
absl::StatusOr<AxisSplit> BiasAddGradSplit(const Shape& out_backprop, bool nchw);

// SoftmaxCrossEntropyWithLogits: features [batch, classes] and labels of the
// same shape; InvalidArgument otherwise.
absl::Status CheckSoftmaxXentShapes(const Shape& features, const Shape& labels);
// SparseSoftmaxCrossEntropyWithLogits: features [batch, classes] and labels
// [batch]; InvalidArgument otherwise.
absl::Status CheckSparseSoftmaxXentShapes(const Shape& features, const Shape& labels);

}  // namespace gradserve
