// Gradient-check cases for the nn op family (see grad_check_util.h):
// activations and their *Grad ops, BiasAdd, the softmax family, the losses,
// pooling, Conv2D and FusedBatchNormV3 (on the float32 path).
#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "graph/attr.h"
#include "tests/unit/autodiff/grad_check_util.h"

namespace gradserve::testing {
namespace {

// Values in [0.1, 1] * scale with a random sign, away from the kink at 0.
RefTensor AwayFromZero(const Shape& shape, double scale = 1.0) {
  RefTensor t = Random(shape, 0.1, 1.0);
  RefTensor sign = RandomInt(shape, 0, 1);
  for (int64_t i = 0; i < t.size(); ++i) t.v[i] *= (sign.v[i] == 0 ? -scale : scale);
  return t;
}

// Rows of probabilities (non-negative, summing to 1).
RefTensor RandomDistribution(int64_t batch, int64_t classes) {
  RefTensor t = Random(Shape{batch, classes}, 0.05, 1.0);
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0;
    for (int64_t j = 0; j < classes; ++j) sum += t.v[b * classes + j];
    for (int64_t j = 0; j < classes; ++j) t.v[b * classes + j] /= sum;
  }
  return t;
}

void AddActivationCases(std::vector<GradCase>& cases) {
  cases.push_back(
      {.name = "Relu", .op = "Relu", .inputs = {AwayFromZero(Shape{3, 5}, 2.0)}, .wrt = {0}});
  // Both sides of 0 and of 6, away from either kink.
  cases.push_back({.name = "Relu6",
                   .op = "Relu6",
                   .inputs = {Values(Shape{2, 4}, {-2, -0.4, 0.3, 2.5, 5.7, 6.4, 9, 1.1})},
                   .wrt = {0}});
  cases.push_back(
      {.name = "Elu", .op = "Elu", .inputs = {AwayFromZero(Shape{3, 5}, 2.0)}, .wrt = {0}});
  cases.push_back({.name = "Elu_order2",
                   .op = "Elu",
                   .inputs = {AwayFromZero(Shape{2, 3}, 2.0)},
                   .wrt = {0},
                   .order = 2});
  for (const char* op : {"Sigmoid", "Tanh"}) {
    const std::string name = op;
    cases.push_back({.name = name, .op = op, .inputs = {Random(Shape{3, 5}, -3, 3)}, .wrt = {0}});
    cases.push_back({.name = name + "_scalar", .op = op, .inputs = {Scalar(0.7)}, .wrt = {0}});
    cases.push_back({.name = name + "_order2",
                     .op = op,
                     .inputs = {Random(Shape{2, 7}, -2, 2)},
                     .wrt = {0},
                     .order = 2});
  }
}

// The backward ops themselves (what a second-order gradient differentiates).
void AddBackwardOpCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "ReluGrad",
                   .op = "ReluGrad",
                   .inputs = {Random(Shape{3, 4}), AwayFromZero(Shape{3, 4})},
                   .wrt = {0}});
  cases.push_back(
      {.name = "Relu6Grad",
       .op = "Relu6Grad",
       .inputs = {Random(Shape{2, 4}), Values(Shape{2, 4}, {-2, -0.4, 0.3, 2.5, 5.7, 6.4, 9, 1.1})},
       .wrt = {0}});
  // outputs of Elu lie in (-1, inf); stay away from the kink at 0.
  cases.push_back({.name = "EluGrad",
                   .op = "EluGrad",
                   .inputs = {Random(Shape{3, 4}), AwayFromZero(Shape{3, 4}, 0.9)},
                   .wrt = {0, 1}});
  cases.push_back({.name = "SigmoidGrad",
                   .op = "SigmoidGrad",
                   .inputs = {Random(Shape{3, 4}, 0.05, 0.95), Random(Shape{3, 4})},
                   .wrt = {0, 1}});
  cases.push_back({.name = "TanhGrad",
                   .op = "TanhGrad",
                   .inputs = {Random(Shape{3, 4}, -0.95, 0.95), Random(Shape{3, 4})},
                   .wrt = {0, 1}});
  cases.push_back({.name = "TanhGrad_order2",
                   .op = "TanhGrad",
                   .inputs = {Random(Shape{2, 3}, -0.95, 0.95), Random(Shape{2, 3})},
                   .wrt = {0, 1},
                   .order = 2});
  cases.push_back({.name = "SigmoidGrad_order2",
                   .op = "SigmoidGrad",
                   .inputs = {Random(Shape{2, 3}, 0.05, 0.95), Random(Shape{2, 3})},
                   .wrt = {0, 1},
                   .order = 2});
  const AttrMap nchw = {{"data_format", MakeAttr("NCHW")}};
  cases.push_back({.name = "BiasAddGrad_nhwc",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{2, 3, 5})},
                   .wrt = {0}});
  cases.push_back({.name = "BiasAddGrad_nchw",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{2, 3, 2, 3})},
                   .attrs = nchw,
                   .wrt = {0}});
}

void AddBiasAddCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "BiasAdd_nhwc",
                   .op = "BiasAdd",
                   .inputs = {Random(Shape{2, 3, 5}), Random(Shape{5})},
                   .wrt = {0, 1}});
  cases.push_back({.name = "BiasAdd_matrix",
                   .op = "BiasAdd",
                   .inputs = {Random(Shape{7, 3}), Random(Shape{3})},
                   .wrt = {0, 1}});
  cases.push_back({.name = "BiasAdd_nchw",
                   .op = "BiasAdd",
                   .inputs = {Random(Shape{2, 3, 2, 3}), Random(Shape{3})},
                   .attrs = {{"data_format", MakeAttr("NCHW")}},
                   .wrt = {0, 1}});
}

void AddSoftmaxCases(std::vector<GradCase>& cases) {
  for (const char* op : {"Softmax", "LogSoftmax"}) {
    const std::string name = op;
    cases.push_back(
        {.name = name + "_matrix", .op = op, .inputs = {Random(Shape{3, 5}, -2, 2)}, .wrt = {0}});
    cases.push_back(
        {.name = name + "_rank3", .op = op, .inputs = {Random(Shape{2, 3, 4}, -2, 2)}, .wrt = {0}});
    cases.push_back(
        {.name = name + "_vector", .op = op, .inputs = {Random(Shape{7}, -2, 2)}, .wrt = {0}});
    cases.push_back({.name = name + "_order2",
                     .op = op,
                     .inputs = {Random(Shape{2, 5}, -2, 2)},
                     .wrt = {0},
                     .order = 2});
  }
}

void AddLossCases(std::vector<GradCase>& cases) {
  const std::string xent = "SoftmaxCrossEntropyWithLogits";
  const std::string sxent = "SparseSoftmaxCrossEntropyWithLogits";
  // Both outputs (loss and backprop) enter L, to both inputs.
  cases.push_back({.name = xent,
                   .op = xent,
                   .inputs = {Random(Shape{3, 5}, -2, 2), RandomDistribution(3, 5)},
                   .wrt = {0, 1}});
  cases.push_back({.name = xent + "_loss_only",
                   .op = xent,
                   .inputs = {Random(Shape{4, 3}, -2, 2), RandomDistribution(4, 3)},
                   .wrt = {0, 1},
                   .outputs = {0}});
  cases.push_back({.name = xent + "_order2",
                   .op = xent,
                   .inputs = {Random(Shape{2, 4}, -2, 2), RandomDistribution(2, 4)},
                   .wrt = {0},
                   .order = 2,
                   .outputs = {0}});
  cases.push_back({.name = sxent,
                   .op = sxent,
                   .inputs = {Random(Shape{4, 5}, -2, 2), RandomInt(Shape{4}, 0, 4)},
                   .input_dtypes = {DType::kInvalid, DType::kInt32},
                   .constant = {false, true},
                   .wrt = {0}});
  cases.push_back({.name = sxent + "_int64_loss_only",
                   .op = sxent,
                   .inputs = {Random(Shape{3, 4}, -2, 2), RandomInt(Shape{3}, 0, 3)},
                   .input_dtypes = {DType::kInvalid, DType::kInt64},
                   .constant = {false, true},
                   .wrt = {0},
                   .outputs = {0}});
  cases.push_back({.name = sxent + "_order2",
                   .op = sxent,
                   .inputs = {Random(Shape{2, 4}, -2, 2), RandomInt(Shape{2}, 0, 3)},
                   .input_dtypes = {DType::kInvalid, DType::kInt32},
                   .constant = {false, true},
                   .wrt = {0},
                   .order = 2,
                   .outputs = {0}});
  cases.push_back({.name = "L2Loss", .op = "L2Loss", .inputs = {Random(Shape{3, 4})}, .wrt = {0}});
  cases.push_back({.name = "L2Loss_scalar", .op = "L2Loss", .inputs = {Scalar(-0.8)}, .wrt = {0}});
}

AttrMap PoolAttrs(int64_t k, int64_t stride, const char* padding) {
  return {{"ksize", MakeAttr(std::vector<int64_t>{1, k, k, 1})},
          {"strides", MakeAttr(std::vector<int64_t>{1, stride, stride, 1})},
          {"padding", MakeAttr(padding)}};
}

// Distinct values at least 1e-2 apart in random order, so no finite-difference
// step moves a window's maximum.
RefTensor Distinct(const Shape& shape) {
  RefTensor t = Random(shape);
  std::vector<int64_t> order(t.size());
  for (int64_t i = 0; i < t.size(); ++i) order[i] = i;
  std::shuffle(order.begin(), order.end(), Rng());
  for (int64_t i = 0; i < t.size(); ++i) t.v[order[i]] = -1.0 + 0.01 * static_cast<double>(i);
  return t;
}

// Pooling is piecewise linear: its second derivative is zero (not connected), so
// MaxPoolGrad, MaxPoolGradGrad and AvgPoolGrad are checked as ops of their own.
void AddPoolCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "MaxPool_valid",
                   .op = "MaxPool",
                   .inputs = {Distinct(Shape{2, 4, 4, 2})},
                   .attrs = PoolAttrs(2, 2, "VALID"),
                   .wrt = {0}});
  cases.push_back({.name = "MaxPool_same_overlap",
                   .op = "MaxPool",
                   .inputs = {Distinct(Shape{1, 5, 3, 2})},
                   .attrs = PoolAttrs(3, 1, "SAME"),
                   .wrt = {0}});
  // MaxPoolGrad reads orig_output's shape only; grad is the input that matters.
  cases.push_back({.name = "MaxPoolGrad",
                   .op = "MaxPoolGrad",
                   .inputs = {Distinct(Shape{1, 4, 4, 2}), Random(Shape{1, 2, 2, 2}),
                              Random(Shape{1, 2, 2, 2})},
                   .attrs = PoolAttrs(2, 2, "VALID"),
                   .wrt = {2}});
  cases.push_back({.name = "MaxPoolGradGrad",
                   .op = "MaxPoolGradGrad",
                   .inputs = {Distinct(Shape{1, 5, 3, 1}), Random(Shape{1, 5, 3, 1}),
                              Random(Shape{1, 5, 3, 1})},
                   .attrs = PoolAttrs(3, 1, "SAME"),
                   .wrt = {2}});
  cases.push_back({.name = "AvgPool_valid",
                   .op = "AvgPool",
                   .inputs = {Random(Shape{2, 4, 6, 2})},
                   .attrs = PoolAttrs(2, 2, "VALID"),
                   .wrt = {0}});
  cases.push_back({.name = "AvgPool_same_overlap",
                   .op = "AvgPool",
                   .inputs = {Random(Shape{1, 5, 4, 3})},
                   .attrs = PoolAttrs(3, 2, "SAME"),
                   .wrt = {0}});
  cases.push_back({.name = "AvgPoolGrad",
                   .op = "AvgPoolGrad",
                   .inputs = {Values(Shape{4}, {1, 5, 4, 2}), Random(Shape{1, 3, 2, 2})},
                   .input_dtypes = {DType::kInt32},
                   .constant = {true, false},
                   .attrs = PoolAttrs(3, 2, "SAME"),
                   .wrt = {1}});
}

AttrMap ConvAttrs(int64_t stride, int64_t dilation, const char* padding) {
  return {{"strides", MakeAttr(std::vector<int64_t>{1, stride, stride, 1})},
          {"dilations", MakeAttr(std::vector<int64_t>{1, dilation, dilation, 1})},
          {"padding", MakeAttr(padding)}};
}

void AddConvCases(std::vector<GradCase>& cases) {
  cases.push_back({.name = "Conv2D_valid",
                   .op = "Conv2D",
                   .inputs = {Random(Shape{2, 4, 5, 3}), Random(Shape{2, 3, 3, 2})},
                   .attrs = ConvAttrs(1, 1, "VALID"),
                   .wrt = {0, 1}});
  cases.push_back({.name = "Conv2D_same_stride2",
                   .op = "Conv2D",
                   .inputs = {Random(Shape{1, 5, 6, 2}), Random(Shape{3, 3, 2, 3})},
                   .attrs = ConvAttrs(2, 1, "SAME"),
                   .wrt = {0, 1}});
  cases.push_back({.name = "Conv2D_dilated",
                   .op = "Conv2D",
                   .inputs = {Random(Shape{1, 6, 5, 2}), Random(Shape{2, 2, 2, 2})},
                   .attrs = ConvAttrs(1, 2, "SAME"),
                   .wrt = {0, 1}});
  cases.push_back({.name = "Conv2D_grouped",
                   .op = "Conv2D",
                   .inputs = {Random(Shape{1, 4, 4, 4}), Random(Shape{2, 2, 2, 6})},
                   .attrs = ConvAttrs(1, 1, "VALID"),
                   .wrt = {0, 1}});
  cases.push_back({.name = "Conv2D_order2",
                   .op = "Conv2D",
                   .inputs = {Random(Shape{1, 4, 3, 2}), Random(Shape{2, 2, 2, 2})},
                   .attrs = ConvAttrs(1, 1, "SAME"),
                   .wrt = {0, 1},
                   .order = 2});
  cases.push_back({.name = "Conv2DBackpropInput",
                   .op = "Conv2DBackpropInput",
                   .inputs = {Values(Shape{4}, {1, 5, 6, 2}), Random(Shape{3, 3, 2, 3}),
                              Random(Shape{1, 3, 3, 3})},
                   .input_dtypes = {DType::kInt32},
                   .constant = {true, false, false},
                   .attrs = ConvAttrs(2, 1, "SAME"),
                   .wrt = {1, 2}});
  cases.push_back({.name = "Conv2DBackpropFilter",
                   .op = "Conv2DBackpropFilter",
                   .inputs = {Random(Shape{1, 5, 6, 2}), Values(Shape{4}, {3, 3, 2, 3}),
                              Random(Shape{1, 3, 3, 3})},
                   .input_dtypes = {DType::kInvalid, DType::kInt32},
                   .constant = {false, true, false},
                   .attrs = ConvAttrs(2, 1, "SAME"),
                   .wrt = {0, 2}});
}

// FusedBatchNormV3's y in float64: x normalized with the batch mean and biased
// variance (training) or the mean and variance inputs (inference), then scaled
// and shifted. Outputs 1-5 carry no gradient (as in TensorFlow), so only y is in L.
std::vector<RefTensor> BatchNormY(const std::vector<RefTensor>& in, int axis, double epsilon,
                                  bool training) {
  const RefTensor& x = in[0];
  const int64_t channels = x.dim(axis);
  int64_t inner = 1;
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  auto channel = [&](int64_t i) { return (i / inner) % channels; };
  std::vector<double> mean(channels, 0.0), var(channels, 0.0);
  if (training) {
    const double n = static_cast<double>(x.size() / channels);
    for (int64_t i = 0; i < x.size(); ++i) mean[channel(i)] += x.v[i] / n;
    for (int64_t i = 0; i < x.size(); ++i) {
      const double d = x.v[i] - mean[channel(i)];
      var[channel(i)] += d * d / n;
    }
  } else {
    mean = in[3].v;
    var = in[4].v;
  }
  RefTensor y = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t c = channel(i);
    y.v[i] = (x.v[i] - mean[c]) / std::sqrt(var[c] + epsilon) * in[1].v[c] + in[2].v[c];
  }
  return {y};
}

// The float32 path (grad_check_util.h): FusedBatchNormV3 has no float64 kernel.
// Symbolic float32 against differences of the float64 reference, tolerance 1e-4:
// float32 rounding in the kernels (the saved statistics, then a few operations
// per element on terms of size ~scale * rsqrt(var + eps)) leaves errors of ~3e-7
// here, while a wrong term in a formula shows as O(1e-2) or more.
// Two elements per channel are the ill-conditioned case: with var near 0 the
// rounding of the saved mean is amplified by up to ~scale * var^0.5 / (var + eps)^1.5,
// which a larger epsilon (0.1) keeps to ~1e-6 instead of ~1e-4 with 0.001.
void AddBatchNormCases(std::vector<GradCase>& cases) {
  struct Spec {
    const char* name;
    Shape x;
    const char* format;
    bool training;
    float factor = 1.0f;
    float epsilon = 0.001f;
  };
  const std::vector<Spec> specs = {
      {"training_nhwc", {3, 5, 4, 7}, "NHWC", true},
      {"training_two_per_channel", {2, 1, 1, 3}, "NHWC", true, 1.0f, 0.1f},
      {"training_nchw_avg_factor", {3, 3, 2, 5}, "NCHW", true, 0.5f},
      {"training_ncdhw", {2, 3, 1, 3, 3}, "NCDHW", true},
      {"inference_nhwc", {3, 5, 2, 3}, "NHWC", false},
      {"inference_nchw", {3, 3, 2, 5}, "NCHW", false},
  };
  for (const Spec& s : specs) {
    const float epsilon = s.epsilon;
    const std::string format = s.format;
    const int axis = format == "NHWC" || format == "NDHWC" ? s.x.rank() - 1 : 1;
    const int64_t c = s.x.dim(axis);
    const bool training = s.training;
    // In training, mean and variance reach only the statistics outputs.
    const std::vector<int> wrt =
        training ? std::vector<int>{0, 1, 2} : std::vector<int>{0, 1, 2, 3, 4};
    cases.push_back({.name = absl::StrCat("FusedBatchNormV3_", s.name),
                     .op = "FusedBatchNormV3",
                     .inputs = {Random(s.x, -2, 3), Random(Shape{c}, 0.5, 1.5), Random(Shape{c}),
                                Random(Shape{c}), Random(Shape{c}, 0.1, 2)},
                     .input_dtypes = std::vector<DType>(5, DType::kFloat),
                     .attrs = {{"epsilon", MakeAttr(epsilon)},
                               {"data_format", MakeAttr(format)},
                               {"is_training", MakeAttr(training)},
                               {"exponential_avg_factor", MakeAttr(s.factor)}},
                     .wrt = wrt,
                     .tolerance = 1e-4,
                     .outputs = {0},
                     .reference = [axis, epsilon, training](const std::vector<RefTensor>& in) {
                       return BatchNormY(in, axis, epsilon, training);
                     }});
  }
}

}  // namespace

std::vector<GradCase> NnGradCases() {
  std::vector<GradCase> cases;
  AddActivationCases(cases);
  AddBackwardOpCases(cases);
  AddBiasAddCases(cases);
  AddSoftmaxCases(cases);
  AddLossCases(cases);
  AddPoolCases(cases);
  AddConvCases(cases);
  AddBatchNormCases(cases);
  return cases;
}

}  // namespace gradserve::testing
