// The host-side half of the array kernels, shared by every device: reading
// index-like inputs (shapes, axes, begin/end, permutations) and, per op, its
// plan — the checks of the inputs and the sizes the kernel then moves data
// with. The CPU kernels (runtime/kernels/cpu/array_ops.cc, slice_ops.cc,
// gather_ops.cc, array_grad_ops.cc) and the CUDA ones (runtime/kernels/cuda/
// array_ops.cc) both call these, so they accept and reject the same inputs with
// the same codes and messages and agree on what moves where.
//
// Nothing here reads or writes an element of a data input, nor touches a
// device: index-like inputs are read in host memory (the CUDA kernels register
// them as host-memory inputs). Output shapes come from graph/ops/array_ops.h,
// the code the shape functions run. Errors are InvalidArgument, without the
// node's name (the executor adds it).
//
// Defined in runtime/kernels/cpu/array_util.cc (the CPU folder is built with
// every device). Thread-safe: plain functions of their arguments.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/graph.h"
#include "graph/ops/array_ops.h"
#include "runtime/kernel.h"

namespace gradserve {

// The values of an integer tensor in host memory (index-like inputs),
// flattened, as int64.
std::vector<int64_t> ReadInts(const Tensor& t);

// Row-major strides (in elements) of `dims`.
std::vector<int64_t> DenseStrides(absl::Span<const int64_t> dims);

// The product of dims [0, axis) of `shape`.
int64_t OuterSize(const Shape& shape, int axis);

// Output 0 = input 0's buffer under `shape` (no copy), or shape's error.
absl::Status Relabel(OpKernelContext& ctx, absl::StatusOr<Shape> shape);

// StridedSlice's and StridedSliceGrad's mask attrs. The graph validated them
// (all have defaults), so reading cannot fail.
array_shape::StridedSliceMasks StridedSliceMasksOf(const Node& node);

// StridedSlice of an input of shape `input`: begin, end and strides are
// inputs 1, 2 and 3.
absl::StatusOr<array_shape::StridedSlicePlan> PlanStridedSlice(
    const OpKernelContext& ctx, const Shape& input, const array_shape::StridedSliceMasks& masks);

// StridedSliceGrad(shape, begin, end, strides, dy): `shape` (input 0, a
// vector of non-negative sizes) is the shape of the output, the sliced
// tensor's; `slice` is the StridedSlice of it, whose final shape must be dy's.
struct StridedSliceGradPlan {
  Shape shape;
  array_shape::StridedSlicePlan slice;
};
absl::StatusOr<StridedSliceGradPlan> PlanStridedSliceGrad(
    const OpKernelContext& ctx, const array_shape::StridedSliceMasks& masks);

// Transpose(x, perm): output dimension i is input dimension perm[i].
struct TransposePlan {
  Shape out_shape;
  std::vector<int> perm;  // negative entries wrapped into [0, rank)
};
absl::StatusOr<TransposePlan> PlanTranspose(const OpKernelContext& ctx);

// ConcatV2(values..., axis) and Pack(values...; attr axis): the output is
// `outer` rows, each the concatenation of the matching row of every value
// (value i viewed as [outer, its elements / outer]).
// A Pack of one value leaves `outer` unset: its output is that value relabelled.
struct ConcatPlan {
  Shape out_shape;
  std::vector<const Tensor*> values;  // ctx's inputs joined, in order (valid during Compute)
  int64_t outer = 1;
};
absl::StatusOr<ConcatPlan> PlanConcatV2(const OpKernelContext& ctx);
absl::StatusOr<ConcatPlan> PlanPack(const OpKernelContext& ctx, int64_t axis);

// GatherV2(params, indices, axis): output row (o, j) is params row
// (o, indices[j]) of `inner` elements, for o < outer and j < indices' count.
// The plan does not read indices: each device checks them against `limit`.
struct GatherPlan {
  Shape out_shape;
  int64_t outer = 1;  // params' elements before the axis
  int64_t limit = 0;  // params' size along the axis: valid indices are [0, limit)
  int64_t inner = 1;  // params' elements after the axis
};
absl::StatusOr<GatherPlan> PlanGatherV2(const OpKernelContext& ctx, int64_t batch_dims);

// OneHot(indices, depth, on_value, off_value; attr axis): the output is
// [prefix, depth, suffix], indices are [prefix, suffix].
struct OneHotPlan {
  Shape out_shape;
  int64_t prefix = 0, depth = 0, suffix = 0;
};
absl::StatusOr<OneHotPlan> PlanOneHot(const OpKernelContext& ctx, int64_t axis);

// UnsortedSegmentSum(data, segment_ids, num_segments): segment_ids' shape is
// a prefix of data's; the output is [num_segments] + data's remaining dims,
// rows of `inner` elements.
struct SegmentSumPlan {
  Shape out_shape;
  int64_t num_segments = 0;
  int64_t inner = 1;
};
absl::StatusOr<SegmentSumPlan> PlanUnsortedSegmentSum(const OpKernelContext& ctx);

}  // namespace gradserve
