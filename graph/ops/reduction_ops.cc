// Reductions over axes given as an input tensor: Sum, Mean, Max, Min, ArgMax.
// As in TensorFlow, axes may be negative, an empty axis list reduces nothing, and
// an axis named twice is an error.
#include <set>

#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

absl::Status ReductionShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(bool keep_dims, c.GetAttr<bool>("keep_dims"));
  const Shape& in = c.input(0);
  const Shape& axes_shape = c.input(1);
  if (axes_shape.rank() > 1) {
    return c.Error("reduction_indices must be a scalar or vector, got shape ",
                   axes_shape.DebugString());
  }
  if (axes_shape.rank() == 1 && axes_shape.dim(0) == 0) {  // nothing to reduce
    c.set_output(0, in);
    return absl::OkStatus();
  }
  std::optional<std::vector<int64_t>> axes = c.InputAsInts(1);
  if (in.unknown_rank()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  if (!axes) {
    c.set_output(0, keep_dims ? Shape::UnknownDims(in.rank()) : Shape::UnknownRank());
    return absl::OkStatus();
  }
  std::set<int64_t> reduced;
  for (int64_t axis : *axes) {
    if (axis < -in.rank() || axis >= in.rank()) {
      return c.Error("invalid reduction dimension ", axis, " for input with ", in.rank(),
                     " dimension(s)");
    }
    if (!reduced.insert(axis < 0 ? axis + in.rank() : axis).second) {
      return c.Error("axes contain duplicate dimension ", axis);
    }
  }
  Shape out;
  for (int i = 0; i < in.rank(); ++i) {
    if (!reduced.contains(i)) {
      out.AddDim(in.dim(i));
    } else if (keep_dims) {
      out.AddDim(1);
    }
  }
  c.set_output(0, out);
  return absl::OkStatus();
}

absl::Status ArgMaxShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape dim_shape, c.WithRank(1, 0));
  (void)dim_shape;
  const Shape& in = c.input(0);
  if (in.unknown_rank()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  if (in.rank() == 0) return c.Error("input must have rank >= 1");
  std::optional<std::vector<int64_t>> dim = c.InputAsInts(1);
  if (!dim) {
    c.set_output(0, Shape::UnknownDims(in.rank() - 1));
    return absl::OkStatus();
  }
  GS_ASSIGN_OR_RETURN(int64_t axis, shape_fn::NormalizeAxis(c, (*dim)[0], in.rank()));
  if (in.dim(axis) == 0) {
    return c.Error("reduction axis ", (*dim)[0], " is empty in shape ", in.DebugString());
  }
  Shape out = in;
  out.RemoveDim(static_cast<int>(axis));
  c.set_output(0, out);
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterReductionOps(OpRegistry& r) {
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    GS_RETURN_IF_ERROR(
        r.Register(OpDefBuilder(op)
                       .Input("input", "T")
                       .Input("reduction_indices", "Tidx")
                       .Output("output", "T")
                       .Attr("keep_dims", false)
                       .TypeAttr("T", RealNumberTypes())
                       .TypeAttr("Tidx", {DType::kInt32, DType::kInt64}, DType::kInt32)
                       .SetShapeFn(ReductionShape)));
  }
  std::vector<DType> argmax_types = RealNumberTypes();
  argmax_types.push_back(DType::kBool);
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("ArgMax")
                     .Input("input", "T")
                     .Input("dimension", "Tidx")
                     .Output("output", "output_type")
                     .TypeAttr("T", argmax_types)
                     .TypeAttr("Tidx", {DType::kInt16, DType::kInt32, DType::kInt64}, DType::kInt32)
                     .TypeAttr("output_type", {DType::kInt32, DType::kInt64}, DType::kInt64)
                     .SetShapeFn(ArgMaxShape)));
  return absl::OkStatus();
}

}  // namespace gradserve
