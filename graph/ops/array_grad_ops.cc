// Backward ops of the array family, with TensorFlow's names and semantics:
// StridedSliceGrad(shape, begin, end, strides, dy) scatters dy into zeros of
// `shape` at the elements StridedSlice(x of that shape, begin, end, strides)
// reads. UnsortedSegmentSum(data, segment_ids, num_segments) sums the slices of
// data whose ids match into num_segments rows (negative ids are dropped); it
// carries GatherV2's gradient. Registered from RegisterArrayOps.
#include "graph/ops/array_ops.h"

#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// The output has the shape `shape` names; dy must have the forward output's.
absl::Status StridedSliceGradShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape shape, c.MakeShapeFromShapeTensor(0));
  GS_ASSIGN_OR_RETURN(array_shape::StridedSliceMasks m, array_shape::ReadStridedSliceMasks(c));
  absl::StatusOr<array_shape::StridedSlicePlan> plan =
      array_shape::StridedSlice(shape, c.input(1), c.InputAsInts(1), c.input(2), c.InputAsInts(2),
                                c.input(3), c.InputAsInts(3), m);
  if (!plan.ok()) return c.Error(plan.status().message());
  if (!plan->final_shape.IsCompatibleWith(c.input(4))) {
    return c.Error("dy has shape ", c.input(4).DebugString(), " but the slice has shape ",
                   plan->final_shape.DebugString());
  }
  c.set_output(0, shape);
  return absl::OkStatus();
}

// [num_segments] + data.shape[rank(segment_ids):]; segment_ids' shape must be a
// prefix of data's.
absl::Status UnsortedSegmentSumShape(InferenceContext& c) {
  const Shape &data = c.input(0), &ids = c.input(1);
  if (c.input(2).rank() > 0) return c.Error("num_segments must be a scalar");
  const std::optional<std::vector<int64_t>> num = c.InputAsInts(2);
  int64_t n = Shape::kUnknownDim;
  if (num && num->size() == 1) {
    n = (*num)[0];
    if (n < 0) return c.Error("num_segments = ", n, " is negative");
  }
  if (data.unknown_rank() || ids.unknown_rank()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  bool prefix = ids.rank() <= data.rank();
  for (int i = 0; prefix && i < ids.rank(); ++i) {
    prefix = ids.dim(i) < 0 || data.dim(i) < 0 || ids.dim(i) == data.dim(i);
  }
  if (!prefix) {
    return c.Error("segment_ids shape ", ids.DebugString(), " is not a prefix of data shape ",
                   data.DebugString());
  }
  Shape out{n};
  for (int i = ids.rank(); i < data.rank(); ++i) out.AddDim(data.dim(i));
  c.set_output(0, out);
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterArrayGradOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("UnsortedSegmentSum")
                                    .Input("data", "T")
                                    .Input("segment_ids", "Tindices")
                                    .Input("num_segments", "Tnumsegments")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tindices", {DType::kInt32, DType::kInt64})
                                    .TypeAttr("Tnumsegments", {DType::kInt32, DType::kInt64},
                                              DType::kInt32)
                                    .SetShapeFn(UnsortedSegmentSumShape)));
  return r.Register(OpDefBuilder("StridedSliceGrad")
                        .Input("shape", "Index")
                        .Input("begin", "Index")
                        .Input("end", "Index")
                        .Input("strides", "Index")
                        .Input("dy", "T")
                        .Output("output", "T")
                        .TypeAttr("T", {})
                        .TypeAttr("Index", {DType::kInt32, DType::kInt64})
                        .Attr("begin_mask", 0)
                        .Attr("end_mask", 0)
                        .Attr("ellipsis_mask", 0)
                        .Attr("new_axis_mask", 0)
                        .Attr("shrink_axis_mask", 0)
                        .SetShapeFn(StridedSliceGradShape));
}

}  // namespace gradserve
