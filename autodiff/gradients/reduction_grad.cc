// Gradients of the reduction op family (graph/ops/reduction_ops.cc), following
// TensorFlow's math_grad.py. Each function's first line is a comment with the math.
//
// Every reduction's gradient first brings the output gradient back to the input's
// rank with 1s at the reduced axes ("reduced shape", TensorFlow's reduced_shape),
// so that it broadcasts against the input. The reduced shape is a Const when the
// input's shape and the axes are known at build time; otherwise it is read at run
// time from Shape(Sum(x, axes, keep_dims=true)).
#include <cstdint>
#include <optional>
#include <vector>

#include "autodiff/gradients.h"
#include "autodiff/gradients/grad_util.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {
namespace {

using Grads = std::vector<Output>;

using grad_util::ScalarOf;

// The axes as non-negative ints, when `axis` is a build-time constant in range.
std::optional<std::vector<int64_t>> ConstAxes(Output axis, int rank) {
  if (axis.index != 0 || axis.node->constant_value() == nullptr) return std::nullopt;
  const Tensor& t = *axis.node->constant_value();
  std::vector<int64_t> axes;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    int64_t a = t.dtype() == DType::kInt64 ? t.data<int64_t>()[i] : t.data<int32_t>()[i];
    if (a < 0) a += rank;
    if (a < 0 || a >= rank) return std::nullopt;
    axes.push_back(a);
  }
  return axes;
}

// x's shape with 1s at the reduced axes (an int32 vector).
Output ReducedShape(const Scope& s, Output x, Output axis) {
  const Shape& xs = x.shape();
  if (xs.IsFullyDefined()) {
    if (std::optional<std::vector<int64_t>> axes = ConstAxes(axis, xs.rank())) {
      std::vector<int32_t> dims(xs.dims().begin(), xs.dims().end());
      for (int64_t a : *axes) dims[a] = 1;
      return ops::Const(s, dims, Shape{static_cast<int64_t>(dims.size())});
    }
  }
  return ops::ShapeOf(s, ops::Sum(s, x, axis, {.keep_dims = true}));
}

// The output gradient reshaped to the reduced shape and broadcast to x's shape:
// g_r * ones(x.shape).
struct Broadcast {
  Output reduced_shape, g_reduced, ones;
};
Broadcast BroadcastGrad(const GradContext& ctx) {
  const Scope& s = ctx.scope;
  const Output x = ctx.inputs[0];
  Broadcast b;
  b.reduced_shape = ReducedShape(s, x, ctx.inputs[1]);
  b.g_reduced = ops::Reshape(s, ctx.grad_outputs[0], b.reduced_shape);
  const Output x_shape =
      x.shape().IsFullyDefined()
          ? ops::Const(s, std::vector<int64_t>(x.shape().dims().begin(), x.shape().dims().end()),
                       Shape{x.shape().rank()})
          : ops::ShapeOf(s, x);
  b.ones = ops::Fill(s, x_shape, ScalarOf(s, x.dtype(), 1.0));
  return b;
}

absl::Status SumGrad(const GradContext& ctx, Grads* grads) {
  // dx = broadcast(reshape(g, reduced_shape), shape(x))
  const Broadcast b = BroadcastGrad(ctx);
  *grads = {ops::Mul(ctx.scope, b.g_reduced, b.ones), Output()};
  return absl::OkStatus();
}

absl::Status MeanGrad(const GradContext& ctx, Grads* grads) {
  // dx = broadcast(reshape(g, reduced_shape), shape(x)) / (number of elements reduced into each
  // output)
  const Scope& s = ctx.scope;
  const Output x = ctx.inputs[0], y = ctx.outputs[0];
  const Broadcast b = BroadcastGrad(ctx);
  Output count;
  if (x.shape().IsFullyDefined() && y.shape().IsFullyDefined()) {
    const int64_t out = y.shape().num_elements();
    count = ScalarOf(
        s, x.dtype(),
        static_cast<double>(x.shape().num_elements()) / static_cast<double>(out > 0 ? out : 1));
  } else {
    count = ops::Sum(s, b.ones, ctx.inputs[1], {.keep_dims = true});
  }
  *grads = {ops::RealDiv(s, ops::Mul(s, b.g_reduced, b.ones), count), Output()};
  return absl::OkStatus();
}

absl::Status MinOrMaxGrad(const GradContext& ctx, Grads* grads) {
  // dx = g * (x == y) / (number of elements equal to y), y broadcast back to x's shape
  const Scope& s = ctx.scope;
  const Output x = ctx.inputs[0];
  const Output reduced_shape = ReducedShape(s, x, ctx.inputs[1]);
  const Output y = ops::Reshape(s, ctx.outputs[0], reduced_shape);
  const Output g = ops::Reshape(s, ctx.grad_outputs[0], reduced_shape);
  const Output indicators = ops::Cast(s, ops::Equal(s, y, x), x.dtype());
  const Output num_selected = ops::Sum(s, indicators, ctx.inputs[1], {.keep_dims = true});
  *grads = {ops::Mul(s, ops::RealDiv(s, indicators, num_selected), g), Output()};
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterReductionGradients(GradientRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register("Sum", SumGrad));
  GS_RETURN_IF_ERROR(r.Register("Mean", MeanGrad));
  GS_RETURN_IF_ERROR(r.Register("Max", MinOrMaxGrad));
  GS_RETURN_IF_ERROR(r.Register("Min", MinOrMaxGrad));
  GS_RETURN_IF_ERROR(r.RegisterNotDifferentiable("ArgMax"));
  return absl::OkStatus();
}

}  // namespace gradserve
