// Variables, TensorFlow's resource-variable ops: VarHandleOp makes a handle to a
// session-owned variable; ReadVariableOp snapshots it; Assign*VariableOp write it.
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// The declared value shape of the variable behind input 0, if visible.
Shape VariableShape(const InferenceContext& c) {
  const NodeOut& src = c.input_source(0);
  if (src.node->op() == "VarHandleOp") {
    absl::StatusOr<Shape> s = src.node->GetAttr<Shape>("shape");
    if (s.ok()) return *s;
  }
  return Shape::UnknownRank();
}

absl::Status ReadVariableShape(InferenceContext& c) {
  c.set_output(0, VariableShape(c));
  return absl::OkStatus();
}

absl::Status AssignShape(InferenceContext& c) {
  if (!VariableShape(c).IsCompatibleWith(c.input(1))) {
    return c.Error("value shape ", c.input(1).DebugString(),
                   " does not match the variable's shape ", VariableShape(c).DebugString());
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterStateOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("VarHandleOp")
                                    .Output("resource", DType::kResource)
                                    .Attr("container", "")
                                    .Attr("shared_name", "")
                                    .TypeAttr("dtype", AllTypes())
                                    .RequiredAttr("shape", AttrType::kShape)
                                    .AttrWithDefault("allowed_devices", AttrType::kListString,
                                                     AttrValue())
                                    .SetShapeFn(shape_fn::Scalar)
                                    .SetStateful()));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ReadVariableOp")
                                    .Input("resource", DType::kResource)
                                    .Output("value", "dtype")
                                    .TypeAttr("dtype", AllTypes())
                                    .SetShapeFn(ReadVariableShape)
                                    .SetStateful()));
  for (const char* op : {"AssignVariableOp", "AssignAddVariableOp", "AssignSubVariableOp"}) {
    OpDefBuilder b(op);
    b.Input("resource", DType::kResource).Input("value", "dtype");
    b.TypeAttr("dtype", absl::string_view(op) == "AssignVariableOp" ? AllTypes()
                                                                    : RealNumberTypes());
    if (absl::string_view(op) == "AssignVariableOp") b.Attr("validate_shape", false);
    GS_RETURN_IF_ERROR(r.Register(std::move(b.SetShapeFn(AssignShape).SetStateful())));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("VarIsInitializedOp")
                                    .Input("resource", DType::kResource)
                                    .Output("is_initialized", DType::kBool)
                                    .SetShapeFn(shape_fn::Scalar)
                                    .SetStateful()));
  return absl::OkStatus();
}

}  // namespace gradserve
