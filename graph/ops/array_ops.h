// Output shapes of the array ops, shared by their shape functions
// (graph/ops/array_ops.cc, on partial shapes) and their CPU kernels
// (runtime/kernels/cpu/, on concrete shapes), so that both accept and reject the
// same inputs with the same messages and cannot disagree on a result's shape.
//
// Shapes may be partial (-1 dims, unknown rank). An index-like input (a shape,
// permutation, axis, paddings, ...) is passed as the Shape of that tensor and its
// values flattened to int64, or std::nullopt when the values are not known while
// the graph is built. With unknown values or shapes the result is as precise as
// the known parts allow and never an error; known values are checked as
// TensorFlow checks them.
//
// Errors are InvalidArgument worded as TensorFlow's, without a node prefix;
// callers add their context.
#pragma once

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "graph/shape.h"

namespace gradserve::array_shape {

using Ints = std::vector<int64_t>;
using MaybeInts = std::optional<Ints>;

// Reshape: `sizes` (rank <= 1) may hold one -1, resolved from the input's element
// count when that is known (a 0 in sizes excludes the input's 0 dims from that
// count, as TensorFlow does, so [0, 2] -> [0, -1] gives [0, 2]).
absl::StatusOr<Shape> Reshape(const Shape& input, const Shape& sizes_shape, const MaybeInts& sizes);

// Transpose's permutation with negative entries wrapped into [0, rank).
absl::StatusOr<std::vector<int>> NormalizePerm(absl::Span<const int64_t> perm, int rank);
absl::StatusOr<Shape> Transpose(const Shape& input, const Shape& perm_shape, const MaybeInts& perm);

// ConcatV2: `axis` is a scalar (or a 1-element vector) in [-rank, rank).
absl::StatusOr<Shape> Concat(absl::Span<const Shape> values, const Shape& axis_shape,
                             const MaybeInts& axis);
// Pack: every value has the same shape; `axis` in [-(rank+1), rank+1).
absl::StatusOr<Shape> Pack(absl::Span<const Shape> values, int64_t axis);
// Normalized axis of Pack for values of rank `rank`.
absl::StatusOr<int> PackAxis(int64_t axis, int rank);

// Slice: begin[i] in [0, dim], size[i] in [0, dim - begin[i]] or -1 (to the end).
absl::StatusOr<Shape> Slice(const Shape& input, const Shape& begin_shape, const MaybeInts& begin,
                            const Shape& size_shape, const MaybeInts& size);

// StridedSlice's bit masks (attrs begin_mask, end_mask, ...).
struct StridedSliceMasks {
  int64_t begin = 0, end = 0, ellipsis = 0, new_axis = 0, shrink_axis = 0;
};
// Reads the five mask attrs from anything with GetAttr<int64_t>(name): a Node
// (kernels) or an InferenceContext (shape functions).
template <typename AttrSource>
absl::StatusOr<StridedSliceMasks> ReadStridedSliceMasks(const AttrSource& src) {
  StridedSliceMasks m;
  for (auto [name, field] : {std::pair{"begin_mask", &m.begin}, {"end_mask", &m.end},
                             {"ellipsis_mask", &m.ellipsis}, {"new_axis_mask", &m.new_axis},
                             {"shrink_axis_mask", &m.shrink_axis}}) {
    absl::StatusOr<int64_t> v = src.template GetAttr<int64_t>(name);
    if (!v.ok()) return v.status();
    *field = *v;
  }
  return m;
}
// What a StridedSlice takes from each input dimension: elements
// begin[i] + k * strides[i] for k < processing_dims[i]. The final shape adds
// the new axes and drops the shrunk ones. When the input's rank or the strides
// are unknown, final_shape has unknown rank and the other fields are empty.
struct StridedSlicePlan {
  Ints begin, strides;
  Ints processing_dims;  // -1 where unknown
  Shape final_shape = Shape::UnknownRank();
};
// Follows TensorFlow's ValidateStridedSliceOp (Note [StridedSlice spec] in
// graph/ops/strided_slice.cc).
absl::StatusOr<StridedSlicePlan> StridedSlice(const Shape& input, const Shape& begin_shape,
                                              const MaybeInts& begin, const Shape& end_shape,
                                              const MaybeInts& end, const Shape& strides_shape,
                                              const MaybeInts& strides,
                                              const StridedSliceMasks& masks);

// Squeeze: `dims` in [-rank, rank) must have size 1; empty = every size-1 dim.
absl::StatusOr<Shape> Squeeze(const Shape& input, absl::Span<const int64_t> dims);
// ExpandDims: `dim` holds one value in [-rank-1, rank].
absl::StatusOr<Shape> ExpandDims(const Shape& input, const Shape& dim_shape, const MaybeInts& dim);

// Fill: `dims` is a vector of non-negative sizes; `value` a scalar.
absl::StatusOr<Shape> Fill(const Shape& dims_shape, const MaybeInts& dims,
                           const Shape& value_shape);

// GatherV2 with batch_dims 0 (others are rejected): params[:axis] + indices +
// params[axis+1:].
absl::StatusOr<Shape> GatherV2(const Shape& params, const Shape& indices, const Shape& axis_shape,
                               const MaybeInts& axis, int64_t batch_dims);
// Normalized axis of GatherV2 for params of rank `rank`.
absl::StatusOr<int> GatherAxis(int64_t axis, int rank);

// OneHot: depth inserted into the indices' shape at `axis` (-1 = last).
absl::StatusOr<Shape> OneHot(const Shape& indices, const Shape& depth_shape, const MaybeInts& depth,
                             const Shape& on_shape, const Shape& off_shape, int64_t axis);

// Tile: one non-negative multiple per input dimension.
absl::StatusOr<Shape> Tile(const Shape& input, const Shape& multiples_shape,
                           const MaybeInts& multiples);
// Pad: paddings is [rank, 2] of non-negative (before, after) pairs.
absl::StatusOr<Shape> Pad(const Shape& input, const Shape& paddings_shape,
                          const MaybeInts& paddings);

// SelectV2: the three-way broadcast of condition, then and else.
absl::StatusOr<Shape> SelectV2(const Shape& cond, const Shape& then_shape, const Shape& else_shape);

}  // namespace gradserve::array_shape
