// Gradients of the nn op family (graph/ops/nn_ops.cc, nn_grad_ops.cc,
// loss_ops.cc), following TensorFlow's nn_grad.py. Each function's first line is
// a comment with the math. The activation gradients go through the *Grad ops,
// whose own gradients are registered too so that second order works.
#include <string>
#include <vector>

#include "autodiff/gradients.h"
#include "autodiff/gradients/grad_util.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {
namespace {

using Grads = std::vector<Output>;

using grad_util::ScalarOf;

Output LastAxis(const Scope& s) { return ops::Const<int32_t>(s, -1); }

// sum(x, -1, keepdims)
Output SumLastKeep(const Scope& s, Output x) {
  return ops::Sum(s, x, LastAxis(s), ops::ReduceAttrs{.keep_dims = true});
}

// The gradient AddGradients filled in for an output nobody used is a ZerosLike;
// like TensorFlow's IsZero, skip the terms it would contribute.
bool IsZero(const Output& g) { return !g.valid() || g.node->op() == "ZerosLike"; }

absl::Status ReluGradFn(const GradContext& c, Grads* g) {
  // dx = g * (y > 0)
  *g = {ops::ReluGrad(c.scope, c.grad_outputs[0], c.outputs[0])};
  return absl::OkStatus();
}

absl::Status Relu6GradFn(const GradContext& c, Grads* g) {
  // dx = g * (0 < x < 6)
  *g = {ops::Relu6Grad(c.scope, c.grad_outputs[0], c.inputs[0])};
  return absl::OkStatus();
}

absl::Status EluGradFn(const GradContext& c, Grads* g) {
  // dx = g * (y < 0 ? y + 1 : 1)
  *g = {ops::EluGrad(c.scope, c.grad_outputs[0], c.outputs[0])};
  return absl::OkStatus();
}

absl::Status SigmoidGradFn(const GradContext& c, Grads* g) {
  // dx = g * y * (1 - y)
  *g = {ops::SigmoidGrad(c.scope, c.outputs[0], c.grad_outputs[0])};
  return absl::OkStatus();
}

absl::Status TanhGradFn(const GradContext& c, Grads* g) {
  // dx = g * (1 - y^2)
  *g = {ops::TanhGrad(c.scope, c.outputs[0], c.grad_outputs[0])};
  return absl::OkStatus();
}

absl::Status ReluGradGradFn(const GradContext& c, Grads* g) {
  // z = gradients * (f > 0): d gradients = ReluGrad(g, f); d f = 0 (almost everywhere)
  *g = {ops::ReluGrad(c.scope, c.grad_outputs[0], c.inputs[1]), Output()};
  return absl::OkStatus();
}

absl::Status Relu6GradGradFn(const GradContext& c, Grads* g) {
  // z = gradients * (0 < f < 6): d gradients = Relu6Grad(g, f); d f = 0 (a.e.)
  *g = {ops::Relu6Grad(c.scope, c.grad_outputs[0], c.inputs[1]), Output()};
  return absl::OkStatus();
}

absl::Status EluGradGradFn(const GradContext& c, Grads* g) {
  // z = y < 0 ? gradients * (y + 1) : gradients:
  // d gradients = EluGrad(g, y); d y = y < 0 ? g * gradients : 0
  const Scope& s = c.scope;
  const Output y = c.inputs[1];
  const Output negative = ops::Less(s, y, ScalarOf(s, y.dtype(), 0.0));
  *g = {ops::EluGrad(s, c.grad_outputs[0], y),
        ops::SelectV2(s, negative, ops::Mul(s, c.grad_outputs[0], c.inputs[0]),
                      ops::ZerosLike(s, y))};
  return absl::OkStatus();
}

absl::Status SigmoidGradGradFn(const GradContext& c, Grads* g) {
  // z = dy * y * (1 - y): d y = g * dy * (1 - 2y); d dy = SigmoidGrad(y, g)
  const Scope& s = c.scope;
  const Output y = c.inputs[0];
  const Output gb = ops::Mul(s, c.grad_outputs[0], c.inputs[1]);
  const Output two_gb_y = ops::Mul(s, ops::Mul(s, ScalarOf(s, y.dtype(), 2.0), gb), y);
  *g = {ops::Sub(s, gb, two_gb_y), ops::SigmoidGrad(s, y, c.grad_outputs[0])};
  return absl::OkStatus();
}

absl::Status TanhGradGradFn(const GradContext& c, Grads* g) {
  // z = dy * (1 - y^2): d y = g * -2 * dy * y; d dy = TanhGrad(y, g)
  const Scope& s = c.scope;
  const Output y = c.inputs[0];
  const Output minus_two_g = ops::Mul(s, c.grad_outputs[0], ScalarOf(s, y.dtype(), -2.0));
  *g = {ops::Mul(s, ops::Mul(s, minus_two_g, c.inputs[1]), y),
        ops::TanhGrad(s, y, c.grad_outputs[0])};
  return absl::OkStatus();
}

ops::BiasAddAttrs BiasAttrsOf(const Node& n) {
  return {.data_format = n.GetAttr<std::string>("data_format").value_or("NHWC")};
}

absl::Status BiasAddGradFn(const GradContext& c, Grads* g) {
  // d value = g; d bias = sum of g over all but the channel axis
  *g = {c.grad_outputs[0], ops::BiasAddGrad(c.scope, c.grad_outputs[0], BiasAttrsOf(c.op))};
  return absl::OkStatus();
}

absl::Status BiasAddGradGradFn(const GradContext& c, Grads* g) {
  // z = sum(out_backprop, non-channel axes): d out_backprop = g broadcast along the channel axis
  const Scope& s = c.scope;
  *g = {ops::BiasAdd(s, ops::ZerosLike(s, c.inputs[0]), c.grad_outputs[0], BiasAttrsOf(c.op))};
  return absl::OkStatus();
}

absl::Status SoftmaxGradFn(const GradContext& c, Grads* g) {
  // dx = (g - sum(g * y, -1, keepdims)) * y
  const Scope& s = c.scope;
  const Output y = c.outputs[0];
  const Output gy = SumLastKeep(s, ops::Mul(s, c.grad_outputs[0], y));
  *g = {ops::Mul(s, ops::Sub(s, c.grad_outputs[0], gy), y)};
  return absl::OkStatus();
}

absl::Status LogSoftmaxGradFn(const GradContext& c, Grads* g) {
  // dx = g - exp(y) * sum(g, -1, keepdims)
  const Scope& s = c.scope;
  const Output softmax = ops::Exp(s, c.outputs[0]);
  *g = {ops::Sub(s, c.grad_outputs[0], ops::Mul(s, softmax, SumLastKeep(s, c.grad_outputs[0])))};
  return absl::OkStatus();
}

// The gradient w.r.t. the logits shared by both cross-entropy losses:
// expand_dims(g_loss, -1) * backprop, plus, when the backprop output itself has a
// gradient g_bp (second order), its softmax Jacobian (g_bp - sum(g_bp * p)) * p.
Output XentLogitsGrad(const GradContext& c) {
  const Scope& s = c.scope;
  const Output g_loss = ops::ExpandDims(s, c.grad_outputs[0], LastAxis(s));
  Output grad = ops::Mul(s, g_loss, c.outputs[1]);
  const Output g_bp = c.grad_outputs[1];
  if (!IsZero(g_bp)) {
    const Output p = ops::Softmax(s, c.inputs[0]);
    const Output jac = ops::Mul(s, ops::Sub(s, g_bp, SumLastKeep(s, ops::Mul(s, g_bp, p))), p);
    grad = ops::AddV2(s, grad, jac);
  }
  return grad;
}

absl::Status SoftmaxXentGradFn(const GradContext& c, Grads* g) {
  // loss = -sum(labels * log_softmax(x)), backprop = softmax(x) - labels:
  // d x = g_loss[:, None] * backprop + softmax'(x)^T g_bp;
  // d labels = g_loss[:, None] * -log_softmax(x) - g_bp
  const Scope& s = c.scope;
  const Output g_loss = ops::ExpandDims(s, c.grad_outputs[0], LastAxis(s));
  Output d_labels = ops::Mul(s, g_loss, ops::Neg(s, ops::LogSoftmax(s, c.inputs[0])));
  // TensorFlow drops this term; backprop does depend on the labels.
  if (!IsZero(c.grad_outputs[1])) d_labels = ops::Sub(s, d_labels, c.grad_outputs[1]);
  *g = {XentLogitsGrad(c), d_labels};
  return absl::OkStatus();
}

absl::Status SparseSoftmaxXentGradFn(const GradContext& c, Grads* g) {
  // loss = lse(x) - x[label], backprop = softmax(x) - onehot(label):
  // d x = g_loss[:, None] * backprop + softmax'(x)^T g_bp; labels are indices
  *g = {XentLogitsGrad(c), Output()};
  return absl::OkStatus();
}

absl::Status L2LossGradFn(const GradContext& c, Grads* g) {
  // L = sum(t^2) / 2: dt = t * g
  *g = {ops::Mul(c.scope, c.inputs[0], c.grad_outputs[0])};
  return absl::OkStatus();
}

struct PoolAttrs {
  std::vector<int64_t> ksize, strides;
  std::string padding;
  ops::MaxPoolAttrs max;
  ops::AvgPoolAttrs avg;
};

absl::StatusOr<PoolAttrs> PoolAttrsOf(const Node& n) {
  PoolAttrs a;
  GS_ASSIGN_OR_RETURN(a.ksize, n.GetAttr<std::vector<int64_t>>("ksize"));
  GS_ASSIGN_OR_RETURN(a.strides, n.GetAttr<std::vector<int64_t>>("strides"));
  GS_ASSIGN_OR_RETURN(a.padding, n.GetAttr<std::string>("padding"));
  GS_ASSIGN_OR_RETURN(a.max.data_format, n.GetAttr<std::string>("data_format"));
  a.avg.data_format = a.max.data_format;
  if (auto p = n.GetAttr<std::vector<int64_t>>("explicit_paddings"); p.ok()) {
    a.max.explicit_paddings = *std::move(p);  // AvgPool has none
  }
  return a;
}

absl::Status MaxPoolGradFn(const GradContext& c, Grads* g) {
  // dx = g routed to the (first) maximum of each window
  GS_ASSIGN_OR_RETURN(PoolAttrs a, PoolAttrsOf(c.op));
  *g = {ops::MaxPoolGrad(c.scope, c.inputs[0], c.outputs[0], c.grad_outputs[0], a.ksize, a.strides,
                         a.padding, a.max)};
  return absl::OkStatus();
}

absl::Status MaxPoolGradGradFn(const GradContext& c, Grads* g) {
  // z = scatter of grad to the window maxima of x (piecewise constant in x):
  // d grad = g gathered at the maxima (MaxPoolGradGrad); d x = d y = 0 (a.e.)
  GS_ASSIGN_OR_RETURN(PoolAttrs a, PoolAttrsOf(c.op));
  *g = {Output(), Output(),
        ops::MaxPoolGradGrad(c.scope, c.inputs[0], c.inputs[1], c.grad_outputs[0], a.ksize,
                             a.strides, a.padding, a.max)};
  return absl::OkStatus();
}

absl::Status MaxPoolGradGradGradFn(const GradContext& c, Grads* g) {
  // z = grad gathered at the window maxima of x: d grad = MaxPoolGrad(g); d x = d y = 0 (a.e.)
  GS_ASSIGN_OR_RETURN(PoolAttrs a, PoolAttrsOf(c.op));
  *g = {Output(), Output(),
        ops::MaxPoolGrad(c.scope, c.inputs[0], c.inputs[1], c.grad_outputs[0], a.ksize, a.strides,
                         a.padding, a.max)};
  return absl::OkStatus();
}

absl::Status AvgPoolGradFn(const GradContext& c, Grads* g) {
  // dx = each window's g spread evenly over its in-bounds pixels
  GS_ASSIGN_OR_RETURN(PoolAttrs a, PoolAttrsOf(c.op));
  *g = {ops::AvgPoolGrad(c.scope, ops::ShapeOf(c.scope, c.inputs[0]), c.grad_outputs[0], a.ksize,
                         a.strides, a.padding, a.avg)};
  return absl::OkStatus();
}

absl::Status AvgPoolGradGradFn(const GradContext& c, Grads* g) {
  // z = AvgPool^T(grad), linear: d grad = AvgPool(g); the shape input has none
  GS_ASSIGN_OR_RETURN(PoolAttrs a, PoolAttrsOf(c.op));
  *g = {Output(), ops::AvgPool(c.scope, c.grad_outputs[0], a.ksize, a.strides, a.padding, a.avg)};
  return absl::OkStatus();
}

struct ConvAttrs {
  std::vector<int64_t> strides;
  std::string padding;
  ops::Conv2DAttrs attrs;
};

absl::StatusOr<ConvAttrs> ConvAttrsOf(const Node& n) {
  ConvAttrs a;
  GS_ASSIGN_OR_RETURN(a.strides, n.GetAttr<std::vector<int64_t>>("strides"));
  GS_ASSIGN_OR_RETURN(a.padding, n.GetAttr<std::string>("padding"));
  GS_ASSIGN_OR_RETURN(a.attrs.use_cudnn_on_gpu, n.GetAttr<bool>("use_cudnn_on_gpu"));
  GS_ASSIGN_OR_RETURN(a.attrs.explicit_paddings,
                      n.GetAttr<std::vector<int64_t>>("explicit_paddings"));
  GS_ASSIGN_OR_RETURN(a.attrs.data_format, n.GetAttr<std::string>("data_format"));
  GS_ASSIGN_OR_RETURN(a.attrs.dilations, n.GetAttr<std::vector<int64_t>>("dilations"));
  return a;
}

absl::Status Conv2DGradFn(const GradContext& c, Grads* g) {
  // y = x * f: dx = Conv2DBackpropInput(shape(x), f, g); df = Conv2DBackpropFilter(x, shape(f), g)
  GS_ASSIGN_OR_RETURN(ConvAttrs a, ConvAttrsOf(c.op));
  const Scope& s = c.scope;
  const Output x = c.inputs[0], f = c.inputs[1], dy = c.grad_outputs[0];
  *g = {ops::Conv2DBackpropInput(s, ops::ShapeOf(s, x), f, dy, a.strides, a.padding, a.attrs),
        ops::Conv2DBackpropFilter(s, x, ops::ShapeOf(s, f), dy, a.strides, a.padding, a.attrs)};
  return absl::OkStatus();
}

absl::Status Conv2DBackpropInputGradFn(const GradContext& c, Grads* g) {
  // z = Conv2D^T_f(dy), bilinear in (f, dy): d f = BackpropFilter(g, shape(f), dy);
  // d dy = Conv2D(g, f); input_sizes has none
  GS_ASSIGN_OR_RETURN(ConvAttrs a, ConvAttrsOf(c.op));
  const Scope& s = c.scope;
  const Output f = c.inputs[1], dy = c.inputs[2], gz = c.grad_outputs[0];
  *g = {Output(),
        ops::Conv2DBackpropFilter(s, gz, ops::ShapeOf(s, f), dy, a.strides, a.padding, a.attrs),
        ops::Conv2D(s, gz, f, a.strides, a.padding, a.attrs)};
  return absl::OkStatus();
}

absl::Status Conv2DBackpropFilterGradFn(const GradContext& c, Grads* g) {
  // z = sum over pixels of x-patches x dy, bilinear in (x, dy): d x = BackpropInput(shape(x), g,
  // dy); d dy = Conv2D(x, g); filter_sizes has none
  GS_ASSIGN_OR_RETURN(ConvAttrs a, ConvAttrsOf(c.op));
  const Scope& s = c.scope;
  const Output x = c.inputs[0], dy = c.inputs[2], gz = c.grad_outputs[0];
  *g = {ops::Conv2DBackpropInput(s, ops::ShapeOf(s, x), gz, dy, a.strides, a.padding, a.attrs),
        Output(), ops::Conv2D(s, x, gz, a.strides, a.padding, a.attrs)};
  return absl::OkStatus();
}

absl::Status FusedBatchNormV3GradFn(const GradContext& c, Grads* g) {
  // y = scale * (x - m) * r + offset, r = rsqrt(v + eps): (dx, d scale, d offset) =
  // FusedBatchNormGradV3(g_y, x, scale, reserve_space_1..3) with m, v the batch
  // statistics (training) or the mean, variance inputs (inference); inference also has
  // d mean = -scale * r * d offset, d variance = -scale * r^2 / 2 * d scale
  // NOTE: as in TensorFlow, gradients reaching the statistics outputs (1-5) are
  // ignored, so mean and variance get none in training (y does not depend on them).
  const Scope& s = c.scope;
  ops::FusedBatchNormGradV3Attrs attrs;
  GS_ASSIGN_OR_RETURN(attrs.epsilon, c.op.GetAttr<float>("epsilon"));
  GS_ASSIGN_OR_RETURN(attrs.data_format, c.op.GetAttr<std::string>("data_format"));
  GS_ASSIGN_OR_RETURN(attrs.is_training, c.op.GetAttr<bool>("is_training"));
  const Output scale = c.inputs[1];
  // reserve_space_1/2: the forward's saved batch statistics, or in inference the
  // mean and variance inputs themselves (as TensorFlow passes them).
  const bool training = attrs.is_training;
  const ops::FusedBatchNormGradV3Outputs d = ops::FusedBatchNormGradV3(
      s, c.grad_outputs[0], c.inputs[0], scale, training ? c.outputs[3] : c.inputs[3],
      training ? c.outputs[4] : c.inputs[4], c.outputs[5], attrs);
  *g = {d.x_backprop, d.scale_backprop, d.offset_backprop, Output(), Output()};
  if (training) return absl::OkStatus();
  const Output eps = ops::Const(s, attrs.epsilon);
  const Output r = ops::Rsqrt(s, ops::AddV2(s, c.inputs[4], eps));
  const Output scale_r = ops::Mul(s, scale, r);
  if (c.needs_grad[3]) (*g)[3] = ops::Neg(s, ops::Mul(s, scale_r, d.offset_backprop));
  if (c.needs_grad[4]) {
    const Output half_scale_r2 = ops::Mul(s, ops::Mul(s, scale_r, r), ops::Const(s, 0.5f));
    (*g)[4] = ops::Neg(s, ops::Mul(s, half_scale_r2, d.scale_backprop));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterNnGradients(GradientRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register("Relu", ReluGradFn));
  GS_RETURN_IF_ERROR(r.Register("Relu6", Relu6GradFn));
  GS_RETURN_IF_ERROR(r.Register("Elu", EluGradFn));
  GS_RETURN_IF_ERROR(r.Register("Sigmoid", SigmoidGradFn));
  GS_RETURN_IF_ERROR(r.Register("Tanh", TanhGradFn));
  GS_RETURN_IF_ERROR(r.Register("ReluGrad", ReluGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("Relu6Grad", Relu6GradGradFn));
  GS_RETURN_IF_ERROR(r.Register("EluGrad", EluGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("SigmoidGrad", SigmoidGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("TanhGrad", TanhGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("BiasAdd", BiasAddGradFn));
  GS_RETURN_IF_ERROR(r.Register("BiasAddGrad", BiasAddGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("Softmax", SoftmaxGradFn));
  GS_RETURN_IF_ERROR(r.Register("LogSoftmax", LogSoftmaxGradFn));
  GS_RETURN_IF_ERROR(r.Register("SoftmaxCrossEntropyWithLogits", SoftmaxXentGradFn));
  GS_RETURN_IF_ERROR(r.Register("SparseSoftmaxCrossEntropyWithLogits", SparseSoftmaxXentGradFn));
  GS_RETURN_IF_ERROR(r.Register("L2Loss", L2LossGradFn));
  GS_RETURN_IF_ERROR(r.Register("MaxPool", MaxPoolGradFn));
  GS_RETURN_IF_ERROR(r.Register("MaxPoolGrad", MaxPoolGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("MaxPoolGradGrad", MaxPoolGradGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("AvgPool", AvgPoolGradFn));
  GS_RETURN_IF_ERROR(r.Register("AvgPoolGrad", AvgPoolGradGradFn));
  GS_RETURN_IF_ERROR(r.Register("Conv2D", Conv2DGradFn));
  GS_RETURN_IF_ERROR(r.Register("Conv2DBackpropInput", Conv2DBackpropInputGradFn));
  GS_RETURN_IF_ERROR(r.Register("Conv2DBackpropFilter", Conv2DBackpropFilterGradFn));
  GS_RETURN_IF_ERROR(r.Register("FusedBatchNormV3", FusedBatchNormV3GradFn));
  return absl::OkStatus();
}

}  // namespace gradserve
