// Gradients of the math op family (graph/ops/math_ops.cc), following TensorFlow's
// math_grad.py. Each function's first line is a comment with the math.
//
// Note [Reducing broadcast gradients]: a binary op's gradient has the broadcast
// shape and is summed back to each operand's shape. When both shapes are known
// at build time the axes are computed here (as TensorFlow's Python does), giving
// a small graph with no shape arithmetic at run time; otherwise the graph
// computes them: Reshape(Sum(g, BroadcastGradientArgs(Shape(x), Shape(g)).r0),
// Shape(x)).
#include <cstdint>
#include <functional>
#include <vector>

#include "autodiff/gradients.h"
#include "autodiff/gradients/grad_util.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {
namespace {

using Grads = std::vector<Output>;

using grad_util::ScalarOf;

Output IndexVector(const Scope& s, const std::vector<int32_t>& v) {
  return ops::Const(s, v, Shape{static_cast<int64_t>(v.size())});
}

// Sums `g` (of the broadcast shape) back to the shape of `x`; see Note [Reducing
// broadcast gradients].
Output SumToShapeOf(const Scope& s, Output g, Output x) {
  const Shape& xs = x.shape();
  const Shape& gs = g.shape();
  if (xs.IsFullyDefined() && gs.IsFullyDefined() && gs.rank() >= xs.rank()) {
    if (xs == gs) return g;
    const int lead = gs.rank() - xs.rank();
    std::vector<int32_t> lead_axes, one_axes;
    for (int i = 0; i < lead; ++i) lead_axes.push_back(i);
    for (int i = 0; i < xs.rank(); ++i) {
      if (xs.dim(i) == 1 && gs.dim(lead + i) != 1) one_axes.push_back(i);
    }
    // Leading axes are dropped; axes where x has size 1 are kept (no Reshape).
    Output r = g;
    if (!lead_axes.empty()) r = ops::Sum(s, r, IndexVector(s, lead_axes));
    if (!one_axes.empty()) r = ops::Sum(s, r, IndexVector(s, one_axes), {.keep_dims = true});
    return r;
  }
  const Output sx = ops::ShapeOf(s, x);
  const ops::BroadcastGradientArgsOutputs axes =
      ops::BroadcastGradientArgs(s, sx, ops::ShapeOf(s, g));
  return ops::Reshape(s, ops::Sum(s, g, axes.r0), sx);
}

// The two reduced gradients of a broadcasting binary op, computed only where needed.
Grads BinaryGrads(const GradContext& ctx, const std::function<Output()>& gx,
                  const std::function<Output()>& gy) {
  Grads out(2);
  if (ctx.needs_grad[0]) out[0] = SumToShapeOf(ctx.scope, gx(), ctx.inputs[0]);
  if (ctx.needs_grad[1]) out[1] = SumToShapeOf(ctx.scope, gy(), ctx.inputs[1]);
  return out;
}

absl::Status AddGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(g), dy = reduce(g)
  const Output g = ctx.grad_outputs[0];
  *grads = BinaryGrads(
      ctx, [&] { return g; }, [&] { return g; });
  return absl::OkStatus();
}

absl::Status SubGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(g), dy = reduce(-g)
  const Output g = ctx.grad_outputs[0];
  *grads = BinaryGrads(
      ctx, [&] { return g; }, [&] { return ops::Neg(ctx.scope, g); });
  return absl::OkStatus();
}

absl::Status MulGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(g * y), dy = reduce(x * g)
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], x = ctx.inputs[0], y = ctx.inputs[1];
  *grads = BinaryGrads(
      ctx, [&] { return ops::Mul(s, g, y); }, [&] { return ops::Mul(s, x, g); });
  return absl::OkStatus();
}

absl::Status RealDivGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(g / y), dy = reduce(g * (-x / y / y))
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], x = ctx.inputs[0], y = ctx.inputs[1];
  *grads = BinaryGrads(
      ctx, [&] { return ops::RealDiv(s, g, y); },
      [&] { return ops::Mul(s, g, ops::RealDiv(s, ops::RealDiv(s, ops::Neg(s, x), y), y)); });
  return absl::OkStatus();
}

absl::Status PowGrad(const GradContext& ctx, Grads* grads) {
  // z = x^y: dx = reduce(g * y * x^(y-1)), dy = reduce(g * z * log(x)) (log(x) := 0 where x <= 0)
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], x = ctx.inputs[0], y = ctx.inputs[1], z = ctx.outputs[0];
  const DType t = x.dtype();
  *grads = BinaryGrads(
      ctx,
      [&] {
        const Output y_minus_1 = ops::Sub(s, y, ScalarOf(s, t, 1.0));
        return ops::Mul(s, ops::Mul(s, g, y), ops::Pow(s, x, y_minus_1));
      },
      [&] {
        // As TensorFlow: log is taken of a safe x so no NaN enters the select.
        const Output mask = ops::Greater(s, x, ScalarOf(s, t, 0.0));
        const Output safe_x = ops::SelectV2(s, mask, x, ops::OnesLike(s, x));
        const Output log_x = ops::SelectV2(s, mask, ops::Log(s, safe_x), ops::ZerosLike(s, x));
        return ops::Mul(s, ops::Mul(s, g, z), log_x);
      });
  return absl::OkStatus();
}

// Maximum (x_wins = Less) and Minimum (x_wins = Greater): ties go to x, as in
// TensorFlow (its mask is x >= y, resp. x <= y).
absl::Status SelectBinaryGrad(const GradContext& ctx, bool maximum, Grads* grads) {
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], x = ctx.inputs[0], y = ctx.inputs[1];
  const Output y_wins = maximum ? ops::Less(s, x, y) : ops::Greater(s, x, y);
  const Output zeros = ops::ZerosLike(s, g);
  *grads = BinaryGrads(
      ctx, [&] { return ops::SelectV2(s, y_wins, zeros, g); },
      [&] { return ops::SelectV2(s, y_wins, g, zeros); });
  return absl::OkStatus();
}

absl::Status MaximumGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(x >= y ? g : 0), dy = reduce(x >= y ? 0 : g)
  return SelectBinaryGrad(ctx, /*maximum=*/true, grads);
}

absl::Status MinimumGrad(const GradContext& ctx, Grads* grads) {
  // dx = reduce(x <= y ? g : 0), dy = reduce(x <= y ? 0 : g)
  return SelectBinaryGrad(ctx, /*maximum=*/false, grads);
}

absl::Status AddNGrad(const GradContext& ctx, Grads* grads) {
  // d(x_1 + ... + x_n)/dx_i = g
  grads->assign(ctx.inputs.size(), ctx.grad_outputs[0]);
  return absl::OkStatus();
}

absl::Status NegGrad(const GradContext& ctx, Grads* grads) {
  // dx = -g
  *grads = {ops::Neg(ctx.scope, ctx.grad_outputs[0])};
  return absl::OkStatus();
}

absl::Status AbsGrad(const GradContext& ctx, Grads* grads) {
  // dx = g * sign(x), sign(x) = (x > 0) - (x < 0)
  const Scope& s = ctx.scope;
  const Output x = ctx.inputs[0];
  const DType t = x.dtype();
  const Output zero = ScalarOf(s, t, 0.0);
  const Output sign = ops::Sub(s, ops::Cast(s, ops::Greater(s, x, zero), t),
                               ops::Cast(s, ops::Less(s, x, zero), t));
  *grads = {ops::Mul(s, ctx.grad_outputs[0], sign)};
  return absl::OkStatus();
}

absl::Status ExpGrad(const GradContext& ctx, Grads* grads) {
  // y = exp(x): dx = g * y
  *grads = {ops::Mul(ctx.scope, ctx.grad_outputs[0], ctx.outputs[0])};
  return absl::OkStatus();
}

absl::Status LogGrad(const GradContext& ctx, Grads* grads) {
  // dx = g / x
  *grads = {ops::RealDiv(ctx.scope, ctx.grad_outputs[0], ctx.inputs[0])};
  return absl::OkStatus();
}

absl::Status SqrtGrad(const GradContext& ctx, Grads* grads) {
  // y = sqrt(x): dx = g * 0.5 / y (TensorFlow's SqrtGrad)
  const Scope& s = ctx.scope;
  const Output half = ScalarOf(s, ctx.inputs[0].dtype(), 0.5);
  *grads = {ops::RealDiv(s, ops::Mul(s, ctx.grad_outputs[0], half), ctx.outputs[0])};
  return absl::OkStatus();
}

absl::Status RsqrtGrad(const GradContext& ctx, Grads* grads) {
  // y = x^(-1/2): dx = g * (-0.5) * y^3 (TensorFlow's RsqrtGrad)
  const Scope& s = ctx.scope;
  const Output y = ctx.outputs[0];
  const Output coef = ScalarOf(s, ctx.inputs[0].dtype(), -0.5);
  const Output y3 = ops::Mul(s, y, ops::Square(s, y));
  *grads = {ops::Mul(s, ops::Mul(s, ctx.grad_outputs[0], coef), y3)};
  return absl::OkStatus();
}

absl::Status SquareGrad(const GradContext& ctx, Grads* grads) {
  // dx = g * 2x
  const Scope& s = ctx.scope;
  const Output two = ScalarOf(s, ctx.inputs[0].dtype(), 2.0);
  *grads = {ops::Mul(s, ctx.grad_outputs[0], ops::Mul(s, two, ctx.inputs[0]))};
  return absl::OkStatus();
}

absl::Status CastGrad(const GradContext& ctx, Grads* grads) {
  // dx = cast(g, SrcT) between floating dtypes; none to or from other dtypes
  GS_ASSIGN_OR_RETURN(DType src, ctx.op.GetAttr<DType>("SrcT"));
  GS_ASSIGN_OR_RETURN(DType dst, ctx.op.GetAttr<DType>("DstT"));
  grads->assign(1, Output());
  if (IsFloatingDType(src) && IsFloatingDType(dst)) {
    (*grads)[0] = ops::Cast(ctx.scope, ctx.grad_outputs[0], src);
  }
  return absl::OkStatus();
}

absl::Status MatMulGrad(const GradContext& ctx, Grads* grads) {
  // c = op(a) op(b): da = g op(b)^T, db = op(a)^T g, each transposed back as a, b are stored
  GS_ASSIGN_OR_RETURN(bool ta, ctx.op.GetAttr<bool>("transpose_a"));
  GS_ASSIGN_OR_RETURN(bool tb, ctx.op.GetAttr<bool>("transpose_b"));
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], a = ctx.inputs[0], b = ctx.inputs[1];
  auto mm = [&](Output p, Output q, bool tp, bool tq) {
    return ops::MatMul(s, p, q, {.transpose_a = tp, .transpose_b = tq});
  };
  grads->assign(2, Output());
  if (ctx.needs_grad[0]) {
    (*grads)[0] = !ta ? (tb ? mm(g, b, false, false) : mm(g, b, false, true))
                      : (tb ? mm(b, g, true, true) : mm(b, g, false, true));
  }
  if (ctx.needs_grad[1]) {
    (*grads)[1] = !ta ? (tb ? mm(g, a, true, false) : mm(a, g, true, false))
                      : (tb ? mm(g, a, true, true) : mm(a, g, false, false));
  }
  return absl::OkStatus();
}

absl::Status BatchMatMulV2Grad(const GradContext& ctx, Grads* grads) {
  // z = adj?(x) adj?(y) per batch: MatMul's rule per matrix, then summed over broadcast batch dims
  GS_ASSIGN_OR_RETURN(bool adj_x, ctx.op.GetAttr<bool>("adj_x"));
  GS_ASSIGN_OR_RETURN(bool adj_y, ctx.op.GetAttr<bool>("adj_y"));
  const Scope& s = ctx.scope;
  const Output g = ctx.grad_outputs[0], x = ctx.inputs[0], y = ctx.inputs[1];
  auto bmm = [&](Output p, Output q, bool ap, bool aq) {
    return ops::BatchMatMulV2(s, p, q, {.adj_x = ap, .adj_y = aq});
  };
  *grads = BinaryGrads(
      ctx,
      [&] {
        if (!adj_x) return adj_y ? bmm(g, y, false, false) : bmm(g, y, false, true);
        return adj_y ? bmm(y, g, true, true) : bmm(y, g, false, true);
      },
      [&] {
        if (!adj_x) return adj_y ? bmm(g, x, true, false) : bmm(x, g, true, false);
        return adj_y ? bmm(g, x, true, true) : bmm(x, g, false, false);
      });
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterMathGradients(GradientRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register("Add", AddGrad));
  GS_RETURN_IF_ERROR(r.Register("AddV2", AddGrad));
  GS_RETURN_IF_ERROR(r.Register("Sub", SubGrad));
  GS_RETURN_IF_ERROR(r.Register("Mul", MulGrad));
  GS_RETURN_IF_ERROR(r.Register("RealDiv", RealDivGrad));
  GS_RETURN_IF_ERROR(r.Register("Pow", PowGrad));
  GS_RETURN_IF_ERROR(r.Register("Maximum", MaximumGrad));
  GS_RETURN_IF_ERROR(r.Register("Minimum", MinimumGrad));
  GS_RETURN_IF_ERROR(r.Register("AddN", AddNGrad));
  GS_RETURN_IF_ERROR(r.Register("Neg", NegGrad));
  GS_RETURN_IF_ERROR(r.Register("Abs", AbsGrad));
  GS_RETURN_IF_ERROR(r.Register("Exp", ExpGrad));
  GS_RETURN_IF_ERROR(r.Register("Log", LogGrad));
  GS_RETURN_IF_ERROR(r.Register("Sqrt", SqrtGrad));
  GS_RETURN_IF_ERROR(r.Register("Rsqrt", RsqrtGrad));
  GS_RETURN_IF_ERROR(r.Register("Square", SquareGrad));
  GS_RETURN_IF_ERROR(r.Register("Cast", CastGrad));
  GS_RETURN_IF_ERROR(r.Register("MatMul", MatMulGrad));
  GS_RETURN_IF_ERROR(r.Register("BatchMatMulV2", BatchMatMulV2Grad));
  for (const char* op : {"Equal", "Less", "Greater", "LogicalAnd", "BroadcastGradientArgs"}) {
    GS_RETURN_IF_ERROR(r.RegisterNotDifferentiable(op));
  }
  return absl::OkStatus();
}

}  // namespace gradserve
