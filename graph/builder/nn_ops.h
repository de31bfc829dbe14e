#pragma once

#include <string>
#include <vector>

#include "graph/builder/scope.h"

namespace gradserve::ops {

// Activations (element-wise).
Output Relu(const Scope& s, Output features);
Output Relu6(const Scope& s, Output features);
Output Elu(const Scope& s, Output features);
Output Sigmoid(const Scope& s, Output x);
Output Tanh(const Scope& s, Output x);

// Softmax and its log over the last axis of `logits` (rank >= 1).
Output Softmax(const Scope& s, Output logits);
Output LogSoftmax(const Scope& s, Output logits);

struct BiasAddAttrs {
  std::string data_format = "NHWC";  // or "NCHW": the bias runs along dimension 1
};
Output BiasAdd(const Scope& s, Output value, Output bias, const BiasAddAttrs& attrs = {});

// input [N,H,W,C] (NHWC), filter [KH,KW,C,OC]; strides has 4 entries (1 in N and C);
// padding "SAME", "VALID" or "EXPLICIT" (with explicit_paddings, 2 per dimension).
struct Conv2DAttrs {
  bool use_cudnn_on_gpu = true;
  std::vector<int64_t> explicit_paddings = {};
  std::string data_format = "NHWC";
  std::vector<int64_t> dilations = {1, 1, 1, 1};
};
Output Conv2D(const Scope& s, Output input, Output filter, const std::vector<int64_t>& strides,
              const std::string& padding, const Conv2DAttrs& attrs = {});

// ksize and strides have 4 entries (1 in N and C).
struct MaxPoolAttrs {
  std::vector<int64_t> explicit_paddings = {};  // with padding "EXPLICIT"
  std::string data_format = "NHWC";
};
Output MaxPool(const Scope& s, Output input, const std::vector<int64_t>& ksize,
               const std::vector<int64_t>& strides, const std::string& padding,
               const MaxPoolAttrs& attrs = {});
struct AvgPoolAttrs {
  std::string data_format = "NHWC";
};
Output AvgPool(const Scope& s, Output value, const std::vector<int64_t>& ksize,
               const std::vector<int64_t>& strides, const std::string& padding,
               const AvgPoolAttrs& attrs = {});

// TensorFlow's defaults, including is_training = true (batch statistics).
struct FusedBatchNormV3Attrs {
  float epsilon = 0.0001f;
  float exponential_avg_factor = 1.0f;
  std::string data_format = "NHWC";
  bool is_training = true;
};
struct FusedBatchNormV3Outputs {
  Output y, batch_mean, batch_variance, reserve_space_1, reserve_space_2, reserve_space_3;
};
FusedBatchNormV3Outputs FusedBatchNormV3(const Scope& s, Output x, Output scale, Output offset,
                                         Output mean, Output variance,
                                         const FusedBatchNormV3Attrs& attrs = {});

// Backward ops (TensorFlow's): the gradient of an activation from its upstream
// gradient and the forward input (Relu, Relu6) or output (Elu, Sigmoid, Tanh).
Output ReluGrad(const Scope& s, Output gradients, Output features);
Output Relu6Grad(const Scope& s, Output gradients, Output features);
Output EluGrad(const Scope& s, Output gradients, Output outputs);
Output SigmoidGrad(const Scope& s, Output y, Output dy);
Output TanhGrad(const Scope& s, Output y, Output dy);
// The sum of out_backprop over all but the channel axis ([channels]).
Output BiasAddGrad(const Scope& s, Output out_backprop, const BiasAddAttrs& attrs = {});

// Pooling gradients (TensorFlow's MaxPoolGrad, MaxPoolGradGrad, AvgPoolGrad);
// the attrs are the forward op's.
Output MaxPoolGrad(const Scope& s, Output orig_input, Output orig_output, Output grad,
                   const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                   const std::string& padding, const MaxPoolAttrs& attrs = {});
Output MaxPoolGradGrad(const Scope& s, Output orig_input, Output orig_output, Output grad,
                       const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                       const std::string& padding, const MaxPoolAttrs& attrs = {});
Output AvgPoolGrad(const Scope& s, Output orig_input_shape, Output grad,
                   const std::vector<int64_t>& ksize, const std::vector<int64_t>& strides,
                   const std::string& padding, const AvgPoolAttrs& attrs = {});

// Conv2D's gradients (TensorFlow's): input_sizes / filter_sizes are int32
// 4-vectors giving the result's shape; the attrs are the forward Conv2D's.
Output Conv2DBackpropInput(const Scope& s, Output input_sizes, Output filter, Output out_backprop,
                           const std::vector<int64_t>& strides, const std::string& padding,
                           const Conv2DAttrs& attrs = {});
Output Conv2DBackpropFilter(const Scope& s, Output input, Output filter_sizes, Output out_backprop,
                            const std::vector<int64_t>& strides, const std::string& padding,
                            const Conv2DAttrs& attrs = {});

// FusedBatchNormV3's gradient (TensorFlow's): x_backprop, scale_backprop and
// offset_backprop from the upstream gradient, the forward x and scale and the
// forward op's reserve_space_1..3; reserve_space_4/5 are empty placeholders.
struct FusedBatchNormGradV3Attrs {
  float epsilon = 0.0001f;
  std::string data_format = "NHWC";  // or NCHW, NDHWC, NCDHW
  bool is_training = true;
};
struct FusedBatchNormGradV3Outputs {
  Output x_backprop, scale_backprop, offset_backprop, reserve_space_4, reserve_space_5;
};
FusedBatchNormGradV3Outputs FusedBatchNormGradV3(const Scope& s, Output y_backprop, Output x,
                                                 Output scale, Output reserve_space_1,
                                                 Output reserve_space_2, Output reserve_space_3,
                                                 const FusedBatchNormGradV3Attrs& attrs = {});

// Losses. features [batch, classes]; labels [batch, classes] (dense) or [batch]
// int32/int64 class indices (sparse); loss [batch], backprop = softmax - labels.
struct SoftmaxCrossEntropyOutputs {
  Output loss, backprop;
};
SoftmaxCrossEntropyOutputs SoftmaxCrossEntropyWithLogits(const Scope& s, Output features,
                                                         Output labels);
SoftmaxCrossEntropyOutputs SparseSoftmaxCrossEntropyWithLogits(const Scope& s, Output features,
                                                               Output labels);
// sum(t^2) / 2, a scalar.
Output L2Loss(const Scope& s, Output t);

}  // namespace gradserve::ops
