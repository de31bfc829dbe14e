// Optimizers, TensorFlow's resource-variable training ops
// (tensorflow/core/ops/training_ops.cc, the Resource* variants): each updates its
// variable and slot variables (accum, m, v) in place and has no outputs. The
// kernels (runtime/kernels/cpu/optimizer_ops.cc) give the exact formulas.
//
// Weight decay and clipping by global norm are composed from existing ops by the
// caller (TensorFlow has no single op for them either).
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// The declared value shape of the variable behind input i, if visible.
Shape VariableShape(const InferenceContext& c, int i) {
  const NodeOut& src = c.input_source(i);
  if (src.node->op() == "VarHandleOp") {
    absl::StatusOr<Shape> s = src.node->GetAttr<Shape>("shape");
    if (s.ok()) return *s;
  }
  return Shape::UnknownRank();
}

// Input indices and names of one optimizer's operands.
struct Operand {
  int index;
  const char* name;
};

// As TensorFlow's Apply* shape functions: the scalars have rank 0, and every
// slot variable and the gradient have the variable's shape (where known).
absl::Status CheckOptimizerShapes(InferenceContext& c, std::initializer_list<Operand> slots,
                                  std::initializer_list<Operand> scalars, Operand grad) {
  const Shape var = VariableShape(c, 0);
  for (const Operand& s : slots) {
    const Shape slot = VariableShape(c, s.index);
    if (!var.IsCompatibleWith(slot)) {
      return c.Error(s.name, " shape ", slot.DebugString(), " does not match var shape ",
                     var.DebugString());
    }
  }
  for (const Operand& s : scalars) {
    if (c.input(s.index).rank() > 0) {
      return c.Error(s.name, " must be a scalar, got shape ", c.input(s.index).DebugString());
    }
  }
  if (!var.IsCompatibleWith(c.input(grad.index))) {
    return c.Error(grad.name, " shape ", c.input(grad.index).DebugString(),
                   " does not match var shape ", var.DebugString());
  }
  return absl::OkStatus();
}

absl::Status GradientDescentShape(InferenceContext& c) {
  return CheckOptimizerShapes(c, {}, {{1, "alpha"}}, {2, "delta"});
}

absl::Status MomentumShape(InferenceContext& c) {
  return CheckOptimizerShapes(c, {{1, "accum"}}, {{2, "lr"}, {4, "momentum"}}, {3, "grad"});
}

absl::Status AdamShape(InferenceContext& c) {
  return CheckOptimizerShapes(c, {{1, "m"}, {2, "v"}},
                              {{3, "beta1_power"},
                               {4, "beta2_power"},
                               {5, "lr"},
                               {6, "beta1"},
                               {7, "beta2"},
                               {8, "epsilon"}},
                              {9, "grad"});
}

}  // namespace

absl::Status RegisterOptimizerOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ResourceApplyGradientDescent")
                                    .Input("var", DType::kResource)
                                    .Input("alpha", "T")
                                    .Input("delta", "T")
                                    .TypeAttr("T", FloatTypes())
                                    .Attr("use_locking", false)
                                    .SetShapeFn(GradientDescentShape)
                                    .SetStateful()));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ResourceApplyMomentum")
                                    .Input("var", DType::kResource)
                                    .Input("accum", DType::kResource)
                                    .Input("lr", "T")
                                    .Input("grad", "T")
                                    .Input("momentum", "T")
                                    .TypeAttr("T", FloatTypes())
                                    .Attr("use_locking", false)
                                    .Attr("use_nesterov", false)
                                    .SetShapeFn(MomentumShape)
                                    .SetStateful()));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("ResourceApplyAdam")
                                    .Input("var", DType::kResource)
                                    .Input("m", DType::kResource)
                                    .Input("v", DType::kResource)
                                    .Input("beta1_power", "T")
                                    .Input("beta2_power", "T")
                                    .Input("lr", "T")
                                    .Input("beta1", "T")
                                    .Input("beta2", "T")
                                    .Input("epsilon", "T")
                                    .Input("grad", "T")
                                    .TypeAttr("T", FloatTypes())
                                    .Attr("use_locking", false)
                                    .Attr("use_nesterov", false)
                                    .SetShapeFn(AdamShape)
                                    .SetStateful()));
  return absl::OkStatus();
}

}  // namespace gradserve
