#include "graph/builder/nn_ops.h"

namespace gradserve::ops {

Output Relu(const Scope& s, Output features) { return s.AddNode("Relu", {features}); }
Output Relu6(const Scope& s, Output features) { return s.AddNode("Relu6", {features}); }
Output Elu(const Scope& s, Output features) { return s.AddNode("Elu", {features}); }
Output Sigmoid(const Scope& s, Output x) { return s.AddNode("Sigmoid", {x}); }
Output Tanh(const Scope& s, Output x) { return s.AddNode("Tanh", {x}); }
Output Softmax(const Scope& s, Output logits) { return s.AddNode("Softmax", {logits}); }
Output LogSoftmax(const Scope& s, Output logits) { return s.AddNode("LogSoftmax", {logits}); }

Output BiasAdd(const Scope& s, Output value, Output bias, const BiasAddAttrs& attrs) {
  return s.AddNode("BiasAdd", {value, bias}, {{"data_format", MakeAttr(attrs.data_format)}});
}

Output Conv2D(const Scope& s, Output input, Output filter, const std::vector<int64_t>& strides,
              const std::string& padding, const Conv2DAttrs& attrs) {
  return s.AddNode("Conv2D", {input, filter},
                   {{"strides", MakeAttr(strides)},
                    {"padding", MakeAttr(padding)},
                    {"use_cudnn_on_gpu", MakeAttr(attrs.use_cudnn_on_gpu)},
                    {"explicit_paddings", MakeAttr(attrs.explicit_paddings)},
                    {"data_format", MakeAttr(attrs.data_format)},
                    {"dilations", MakeAttr(attrs.dilations)}});
}

Output MaxPool(const Scope& s, Output input, const std::vector<int64_t>& ksize,
               const std::vector<int64_t>& strides, const std::string& padding,
               const MaxPoolAttrs& attrs) {
  return s.AddNode("MaxPool", {input},
                   {{"ksize", MakeAttr(ksize)},
                    {"strides", MakeAttr(strides)},
                    {"padding", MakeAttr(padding)},
                    {"explicit_paddings", MakeAttr(attrs.explicit_paddings)},
                    {"data_format", MakeAttr(attrs.data_format)}});
}

Output AvgPool(const Scope& s, Output value, const std::vector<int64_t>& ksize,
               const std::vector<int64_t>& strides, const std::string& padding,
               const AvgPoolAttrs& attrs) {
  return s.AddNode("AvgPool", {value},
                   {{"ksize", MakeAttr(ksize)},
                    {"strides", MakeAttr(strides)},
                    {"padding", MakeAttr(padding)},
                    {"data_format", MakeAttr(attrs.data_format)}});
}

FusedBatchNormV3Outputs FusedBatchNormV3(const Scope& s, Output x, Output scale, Output offset,
                                         Output mean, Output variance,
                                         const FusedBatchNormV3Attrs& attrs) {
  Node* n = s.AddNode("FusedBatchNormV3", {x, scale, offset, mean, variance},
                      {{"epsilon", MakeAttr(attrs.epsilon)},
                       {"exponential_avg_factor", MakeAttr(attrs.exponential_avg_factor)},
                       {"data_format", MakeAttr(attrs.data_format)},
                       {"is_training", MakeAttr(attrs.is_training)}});
  if (n == nullptr) return {};
  return {Output(n, 0), Output(n, 1), Output(n, 2), Output(n, 3), Output(n, 4), Output(n, 5)};
}

Output ReluGrad(const Scope& s, Output gradients, Output features) {
  return s.AddNode("ReluGrad", {gradients, features});
}
Output Relu6Grad(const Scope& s, Output gradients, Output features) {
  return s.AddNode("Relu6Grad", {gradients, features});
}
Output EluGrad(const Scope& s, Output gradients, Output outputs) {
  return s.AddNode("EluGrad", {gradients, outputs});
}
Output SigmoidGrad(const Scope& s, Output y, Output dy) {
  return s.AddNode("SigmoidGrad", {y, dy});
}
Output TanhGrad(const Scope& s, Output y, Output dy) { return s.AddNode("TanhGrad", {y, dy}); }
Output BiasAddGrad(const Scope& s, Output out_backprop, const BiasAddAttrs& attrs) {
  return s.AddNode("BiasAddGrad", {out_backprop}, {{"data_format", MakeAttr(attrs.data_format)}});
}

namespace {
Output MaxPoolBackward(const char* op, const Scope& s, Output orig_input, Output orig_output,
                       Output grad, const std::vector<int64_t>& ksize,
                       const std::vector<int64_t>& strides, const std::string& padding,
                       const MaxPoolAttrs& attrs) {
  return s.AddNode(op, {orig_input, orig_output, grad},
                   {{"ksize", MakeAttr(ksize)},
                    {"strides", MakeAttr(strides)},
                    {"padding", MakeAttr(padding)},
                    {"explicit_paddings", MakeAttr(attrs.explicit_paddings)},
                    {"data_format", MakeAttr(attrs.data_format)}});
}
}  // namespace

Output MaxPoolGrad(const Scope& s, Output orig_input, Output orig_output, Output grad,
                   const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                   const std::string& padding, const MaxPoolAttrs& attrs) {
  return MaxPoolBackward("MaxPoolGrad", s, orig_input, orig_output, grad, ksize, strides, padding,
                         attrs);
}
Output MaxPoolGradGrad(const Scope& s, Output orig_input, Output orig_output, Output grad,
                       const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                       const std::string& padding, const MaxPoolAttrs& attrs) {
  return MaxPoolBackward("MaxPoolGradGrad", s, orig_input, orig_output, grad, ksize, strides,
                         padding, attrs);
}
Output AvgPoolGrad(const Scope& s, Output orig_input_shape, Output grad,
                   const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                   const std::string& padding, const AvgPoolAttrs& attrs) {
  return s.AddNode("AvgPoolGrad", {orig_input_shape, grad},
                   {{"ksize", MakeAttr(ksize)},
                    {"strides", MakeAttr(strides)},
                    {"padding", MakeAttr(padding)},
                    {"data_format", MakeAttr(attrs.data_format)}});
}

namespace {
AttrMap ConvAttrs(const std::vector<int64_t>& strides, const std::string& padding,
                  const Conv2DAttrs& attrs) {
  return {{"strides", MakeAttr(strides)},
          {"padding", MakeAttr(padding)},
          {"use_cudnn_on_gpu", MakeAttr(attrs.use_cudnn_on_gpu)},
          {"explicit_paddings", MakeAttr(attrs.explicit_paddings)},
          {"data_format", MakeAttr(attrs.data_format)},
          {"dilations", MakeAttr(attrs.dilations)}};
}
}  // namespace

Output Conv2DBackpropInput(const Scope& s, Output input_sizes, Output filter, Output out_backprop,
                           const std::vector<int64_t>& strides, const std::string& padding,
                           const Conv2DAttrs& attrs) {
  return s.AddNode("Conv2DBackpropInput", {input_sizes, filter, out_backprop},
                   ConvAttrs(strides, padding, attrs));
}
Output Conv2DBackpropFilter(const Scope& s, Output input, Output filter_sizes, Output out_backprop,
                            const std::vector<int64_t>& strides, const std::string& padding,
                            const Conv2DAttrs& attrs) {
  return s.AddNode("Conv2DBackpropFilter", {input, filter_sizes, out_backprop},
                   ConvAttrs(strides, padding, attrs));
}

FusedBatchNormGradV3Outputs FusedBatchNormGradV3(const Scope& s, Output y_backprop, Output x,
                                                 Output scale, Output reserve_space_1,
                                                 Output reserve_space_2, Output reserve_space_3,
                                                 const FusedBatchNormGradV3Attrs& attrs) {
  Node* n = s.AddNode("FusedBatchNormGradV3",
                      {y_backprop, x, scale, reserve_space_1, reserve_space_2, reserve_space_3},
                      {{"epsilon", MakeAttr(attrs.epsilon)},
                       {"data_format", MakeAttr(attrs.data_format)},
                       {"is_training", MakeAttr(attrs.is_training)}});
  if (n == nullptr) return {};
  return {Output(n, 0), Output(n, 1), Output(n, 2), Output(n, 3), Output(n, 4)};
}

SoftmaxCrossEntropyOutputs SoftmaxCrossEntropyWithLogits(const Scope& s, Output features,
                                                         Output labels) {
  Node* n = s.AddNode("SoftmaxCrossEntropyWithLogits", {features, labels});
  if (n == nullptr) return {};
  return {Output(n, 0), Output(n, 1)};
}
SoftmaxCrossEntropyOutputs SparseSoftmaxCrossEntropyWithLogits(const Scope& s, Output features,
                                                               Output labels) {
  Node* n = s.AddNode("SparseSoftmaxCrossEntropyWithLogits", {features, labels});
  if (n == nullptr) return {};
  return {Output(n, 0), Output(n, 1)};
}
Output L2Loss(const Scope& s, Output t) { return s.AddNode("L2Loss", {t}); }

}  // namespace gradserve::ops
