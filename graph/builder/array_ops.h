#pragma once

#include <vector>

#include "graph/builder/scope.h"

namespace gradserve::ops {

Output Const(const Scope& s, const Tensor& value);
template <typename T>
Output Const(const Scope& s, T scalar) { return Const(s, Tensor::Scalar<T>(scalar)); }
template <typename T>
Output Const(const Scope& s, const std::vector<T>& values, const Shape& shape) {
  return Const(s, Tensor::FromVector<T>(values, shape));
}
Output Placeholder(const Scope& s, DType dtype, const Shape& shape = Shape::UnknownRank());
Output PlaceholderWithDefault(const Scope& s, Output input, const Shape& shape);
Output Identity(const Scope& s, Output input);
Output StopGradient(const Scope& s, Output input);
// A node that does nothing; with control inputs it groups targets.
Node* NoOp(const Scope& s);

// Shape manipulation. Index-like inputs (shape, perm, axis, ...) are int32 or
// int64 tensors, usually Consts; negative axes count from the end.
Output Reshape(const Scope& s, Output tensor, Output shape);
Output Transpose(const Scope& s, Output x, Output perm);
// Concatenates two or more tensors along `axis`.
Output ConcatV2(const Scope& s, const std::vector<Output>& values, Output axis);
struct PackAttrs {
  int64_t axis = 0;
};
// Stacks one or more tensors of one shape along a new dimension `axis`.
Output Pack(const Scope& s, const std::vector<Output>& values, const PackAttrs& attrs = {});
// size[i] = -1 takes the rest of dimension i.
Output Slice(const Scope& s, Output input, Output begin, Output size);
// Bit i of a mask refers to entry i of begin/end/strides (TensorFlow's semantics).
struct StridedSliceAttrs {
  int64_t begin_mask = 0;
  int64_t end_mask = 0;
  int64_t ellipsis_mask = 0;
  int64_t new_axis_mask = 0;
  int64_t shrink_axis_mask = 0;
};
Output StridedSlice(const Scope& s, Output input, Output begin, Output end, Output strides,
                    const StridedSliceAttrs& attrs = {});
struct SqueezeAttrs {
  std::vector<int64_t> squeeze_dims;  // empty: every dimension of size 1
};
Output Squeeze(const Scope& s, Output input, const SqueezeAttrs& attrs = {});
Output ExpandDims(const Scope& s, Output input, Output dim);
Output Tile(const Scope& s, Output input, Output multiples);
// Zero padding; paddings is [rank, 2] (before, after).
Output Pad(const Scope& s, Output input, Output paddings);

// New values.
struct ShapeAttrs {
  DType out_type = DType::kInt32;
};
// The Shape op (named ShapeOf so that it does not hide the type gradserve::Shape).
Output ShapeOf(const Scope& s, Output input, const ShapeAttrs& attrs = {});
// A tensor of shape `dims` (a vector) filled with the scalar `value`.
Output Fill(const Scope& s, Output dims, Output value);
Output ZerosLike(const Scope& s, Output x);
Output OnesLike(const Scope& s, Output x);
struct GatherV2Attrs {
  int64_t batch_dims = 0;  // only 0 is supported
};
// params[..., indices, ...] along `axis`; an index out of range is an error.
Output GatherV2(const Scope& s, Output params, Output indices, Output axis,
                const GatherV2Attrs& attrs = {});
struct OneHotAttrs {
  int64_t axis = -1;
};
// `depth` is an int32 scalar; indices outside [0, depth) give a row of off_value.
Output OneHot(const Scope& s, Output indices, Output depth, Output on_value, Output off_value,
              const OneHotAttrs& attrs = {});
// Element-wise condition ? t : e, with the three operands broadcast together.
Output SelectV2(const Scope& s, Output condition, Output t, Output e);

// Backward ops (TensorFlow's).
// The gradient of StridedSlice: dy scattered into zeros of `shape` (a vector)
// where StridedSlice(x of that shape, begin, end, strides, attrs) reads.
Output StridedSliceGrad(const Scope& s, Output shape, Output begin, Output end, Output strides,
                        Output dy, const StridedSliceAttrs& attrs = {});

// Sums the slices data[i, ...] into output[segment_ids[i], ...] (output has
// num_segments rows; segment_ids' shape is a prefix of data's; negative ids are
// dropped, ids >= num_segments are an error).
Output UnsortedSegmentSum(const Scope& s, Output data, Output segment_ids, Output num_segments);

}  // namespace gradserve::ops
