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

}  // namespace gradserve::ops
