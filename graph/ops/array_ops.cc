// Array ops: sources (Const, Placeholder), identities and shape manipulation.
// The shape arithmetic lives in graph/ops/array_shapes.cc and strided_slice.cc,
// shared with the kernels; the shape functions here feed it the known values.
#include "graph/ops/array_ops.h"

#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

absl::Status ConstShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Tensor value, c.GetAttr<Tensor>("value"));
  GS_ASSIGN_OR_RETURN(DType dtype, c.GetAttr<DType>("dtype"));
  if (value.dtype() != dtype) {
    return c.Error("value is ", DTypeName(value.dtype()), " but dtype is ", DTypeName(dtype));
  }
  c.set_output(0, value.shape());
  c.set_output_value(std::move(value));
  return absl::OkStatus();
}

absl::Status PlaceholderShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape shape, c.GetAttr<Shape>("shape"));
  c.set_output(0, shape);
  return absl::OkStatus();
}

absl::Status PlaceholderWithDefaultShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape shape, c.GetAttr<Shape>("shape"));
  if (!shape.IsCompatibleWith(c.input(0))) {
    return c.Error("default value shape ", c.input(0).DebugString(),
                   " is not compatible with shape ", shape.DebugString());
  }
  c.set_output(0, shape);
  return absl::OkStatus();
}

// Sets output 0 from a shape helper, naming the node on error.
absl::Status SetOutput(InferenceContext& c, absl::StatusOr<Shape> shape) {
  if (!shape.ok()) return c.Error(shape.status().message());
  c.set_output(0, *std::move(shape));
  return absl::OkStatus();
}

absl::Status ReshapeShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Reshape(c.input(0), c.input(1), c.InputAsInts(1)));
}

absl::Status TransposeShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Transpose(c.input(0), c.input(1), c.InputAsInts(1)));
}

absl::Status ConcatV2Shape(InferenceContext& c) {
  const int n = c.num_inputs() - 1;
  std::vector<Shape> values;
  for (int i = 0; i < n; ++i) values.push_back(c.input(i));
  return SetOutput(c, array_shape::Concat(values, c.input(n), c.InputAsInts(n)));
}

absl::Status PackShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(int64_t axis, c.GetAttr<int64_t>("axis"));
  std::vector<Shape> values;
  for (int i = 0; i < c.num_inputs(); ++i) values.push_back(c.input(i));
  return SetOutput(c, array_shape::Pack(values, axis));
}

absl::Status SliceShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Slice(c.input(0), c.input(1), c.InputAsInts(1), c.input(2),
                                         c.InputAsInts(2)));
}

absl::Status StridedSliceShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(array_shape::StridedSliceMasks masks, array_shape::ReadStridedSliceMasks(c));
  absl::StatusOr<array_shape::StridedSlicePlan> plan =
      array_shape::StridedSlice(c.input(0), c.input(1), c.InputAsInts(1), c.input(2),
                                c.InputAsInts(2), c.input(3), c.InputAsInts(3), masks);
  if (!plan.ok()) return c.Error(plan.status().message());
  c.set_output(0, plan->final_shape);
  return absl::OkStatus();
}

absl::Status SqueezeShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(std::vector<int64_t> dims, c.GetAttr<std::vector<int64_t>>("squeeze_dims"));
  return SetOutput(c, array_shape::Squeeze(c.input(0), dims));
}

absl::Status ExpandDimsShape(InferenceContext& c) {
  return SetOutput(c, array_shape::ExpandDims(c.input(0), c.input(1), c.InputAsInts(1)));
}

// Publishes the value when the input shape is fully defined, so that shape
// functions downstream (Reshape, Fill, ...) see exact sizes.
absl::Status ShapeShape(InferenceContext& c) {
  const Shape& in = c.input(0);
  c.set_output(0, Shape{in.unknown_rank() ? Shape::kUnknownDim : in.rank()});
  if (!in.IsFullyDefined()) return absl::OkStatus();
  GS_ASSIGN_OR_RETURN(DType out_type, c.GetAttr<DType>("out_type"));
  Tensor value(out_type, Shape{in.rank()});
  for (int i = 0; i < in.rank(); ++i) {
    if (out_type == DType::kInt64) {
      value.data<int64_t>()[i] = in.dim(i);
    } else if (in.dim(i) > INT32_MAX) {
      return absl::OkStatus();  // the kernel reports the overflow
    } else {
      value.data<int32_t>()[i] = static_cast<int32_t>(in.dim(i));
    }
  }
  c.set_output_value(std::move(value));
  return absl::OkStatus();
}

absl::Status FillShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Fill(c.input(0), c.InputAsInts(0), c.input(1)));
}

absl::Status GatherV2Shape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(int64_t batch_dims, c.GetAttr<int64_t>("batch_dims"));
  return SetOutput(
      c, array_shape::GatherV2(c.input(0), c.input(1), c.input(2), c.InputAsInts(2), batch_dims));
}

absl::Status OneHotShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(int64_t axis, c.GetAttr<int64_t>("axis"));
  return SetOutput(c, array_shape::OneHot(c.input(0), c.input(1), c.InputAsInts(1), c.input(2),
                                          c.input(3), axis));
}

absl::Status TileShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Tile(c.input(0), c.input(1), c.InputAsInts(1)));
}

absl::Status PadShape(InferenceContext& c) {
  return SetOutput(c, array_shape::Pad(c.input(0), c.input(1), c.InputAsInts(1)));
}

absl::Status SelectV2Shape(InferenceContext& c) {
  return SetOutput(c, array_shape::SelectV2(c.input(0), c.input(1), c.input(2)));
}

// The index dtypes of shape-like inputs (Tshape, Tperm, Tidx, ...).
std::vector<DType> IndexTypes() { return {DType::kInt32, DType::kInt64}; }

// Registers the ops that reshape, reorder or move data.
absl::Status RegisterShapingOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Reshape")
                                    .Input("tensor", "T")
                                    .Input("shape", "Tshape")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tshape", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(ReshapeShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Transpose")
                                    .Input("x", "T")
                                    .Input("perm", "Tperm")
                                    .Output("y", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tperm", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(TransposeShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ConcatV2")
                                    .InputList("values", "T", "N")
                                    .Input("axis", "Tidx")
                                    .Output("output", "T")
                                    .IntAttr("N", 2)
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tidx", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(ConcatV2Shape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Pack")
                                    .InputList("values", "T", "N")
                                    .Output("output", "T")
                                    .IntAttr("N", 1)
                                    .TypeAttr("T", {})
                                    .Attr("axis", 0)
                                    .SetShapeFn(PackShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Slice")
                                    .Input("input", "T")
                                    .Input("begin", "Index")
                                    .Input("size", "Index")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Index", IndexTypes())
                                    .SetShapeFn(SliceShape)));
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("StridedSlice")
                     .Input("input", "T")
                     .Input("begin", "Index")
                     .Input("end", "Index")
                     .Input("strides", "Index")
                     .Output("output", "T")
                     .TypeAttr("T", {})
                     .TypeAttr("Index", {DType::kInt16, DType::kInt32, DType::kInt64})
                     .Attr("begin_mask", 0)
                     .Attr("end_mask", 0)
                     .Attr("ellipsis_mask", 0)
                     .Attr("new_axis_mask", 0)
                     .Attr("shrink_axis_mask", 0)
                     .SetShapeFn(StridedSliceShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Squeeze")
                                    .Input("input", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .Attr("squeeze_dims", std::vector<int64_t>{})
                                    .SetShapeFn(SqueezeShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ExpandDims")
                                    .Input("input", "T")
                                    .Input("dim", "Tdim")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tdim", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(ExpandDimsShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Tile")
                                    .Input("input", "T")
                                    .Input("multiples", "Tmultiples")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("Tmultiples", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(TileShape)));
  return r.Register(OpDefBuilder("Pad")
                        .Input("input", "T")
                        .Input("paddings", "Tpaddings")
                        .Output("output", "T")
                        .TypeAttr("T", {})
                        .TypeAttr("Tpaddings", IndexTypes(), DType::kInt32)
                        .SetShapeFn(PadShape));
}

// Registers the ops that make new values: Shape, Fill, *Like, GatherV2, OneHot, SelectV2.
absl::Status RegisterValueOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Shape")
                                    .Input("input", "T")
                                    .Output("output", "out_type")
                                    .TypeAttr("T", {})
                                    .TypeAttr("out_type", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(ShapeShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Fill")
                                    .Input("dims", "index_type")
                                    .Input("value", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", {})
                                    .TypeAttr("index_type", IndexTypes(), DType::kInt32)
                                    .SetShapeFn(FillShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ZerosLike")
                                    .Input("x", "T")
                                    .Output("y", "T")
                                    .TypeAttr("T", {})
                                    .SetShapeFn(shape_fn::Unchanged)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("OnesLike")
                                    .Input("x", "T")
                                    .Output("y", "T")
                                    .TypeAttr("T", AllTypes())
                                    .SetShapeFn(shape_fn::Unchanged)));
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("GatherV2")
                     .Input("params", "Tparams")
                     .Input("indices", "Tindices")
                     .Input("axis", "Taxis")
                     .Output("output", "Tparams")
                     .Attr("batch_dims", 0)
                     .TypeAttr("Tparams", {})
                     .TypeAttr("Tindices", {DType::kInt16, DType::kInt32, DType::kInt64})
                     .TypeAttr("Taxis", IndexTypes())
                     .SetShapeFn(GatherV2Shape)));
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("OneHot")
                     .Input("indices", "TI")
                     .Input("depth", DType::kInt32)
                     .Input("on_value", "T")
                     .Input("off_value", "T")
                     .Output("output", "T")
                     .Attr("axis", -1)
                     .TypeAttr("T", {})
                     .TypeAttr("TI", {DType::kUInt8, DType::kInt8, DType::kInt32, DType::kInt64},
                               DType::kInt64)
                     .SetShapeFn(OneHotShape)));
  return r.Register(OpDefBuilder("SelectV2")
                        .Input("condition", DType::kBool)
                        .Input("t", "T")
                        .Input("e", "T")
                        .Output("output", "T")
                        .TypeAttr("T", {})
                        .SetShapeFn(SelectV2Shape));
}

}  // namespace

absl::Status RegisterArrayGradOps(OpRegistry& r);  // array_grad_ops.cc

absl::Status RegisterArrayOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterArrayGradOps(r));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Const")
                                    .Output("output", "dtype")
                                    .RequiredAttr("value", AttrType::kTensor)
                                    .TypeAttr("dtype", {})
                                    .SetShapeFn(ConstShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Placeholder")
                                    .Output("output", "dtype")
                                    .TypeAttr("dtype", {})
                                    .Attr("shape", Shape::UnknownRank())
                                    .SetShapeFn(PlaceholderShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("PlaceholderWithDefault")
                                    .Input("input", "dtype")
                                    .Output("output", "dtype")
                                    .TypeAttr("dtype", {})
                                    .RequiredAttr("shape", AttrType::kShape)
                                    .SetShapeFn(PlaceholderWithDefaultShape)));
  for (const char* op : {"Identity", "StopGradient"}) {
    GS_RETURN_IF_ERROR(r.Register(OpDefBuilder(op)
                                      .Input("input", "T")
                                      .Output("output", "T")
                                      .TypeAttr("T", {})
                                      .SetShapeFn(shape_fn::Unchanged)));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("NoOp").SetShapeFn(shape_fn::NoOutputs)));
  GS_RETURN_IF_ERROR(RegisterShapingOps(r));
  return RegisterValueOps(r);
}

}  // namespace gradserve
