// Array ops: sources (Const, Placeholder), identities and shape manipulation.
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

}  // namespace

absl::Status RegisterArrayOps(OpRegistry& r) {
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
  return absl::OkStatus();
}

}  // namespace gradserve
