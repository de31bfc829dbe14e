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

}  // namespace gradserve::ops
