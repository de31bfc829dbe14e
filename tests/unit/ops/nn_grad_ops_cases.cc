// Conformance cases for the backward and loss ops of the nn family (see
// op_test_util.h): ReluGrad, Relu6Grad, EluGrad, SigmoidGrad, TanhGrad,
// BiasAddGrad, SoftmaxCrossEntropyWithLogits, SparseSoftmaxCrossEntropyWithLogits
// and L2Loss; the pooling and Conv2D gradients in nn_grad_window_cases.cc,
// FusedBatchNormGradV3 in nn_batch_norm_grad_cases.cc. NnOpCases (nn_cases.cc)
// includes them.
#include <algorithm>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

std::vector<OpCase> NnGradWindowOpCases();     // nn_grad_window_cases.cc
std::vector<OpCase> NnBatchNormGradOpCases();  // nn_batch_norm_grad_cases.cc

namespace {

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};

Reference Binary(std::function<double(double, double)> f) {
  return [f](const std::vector<RefTensor>& in) {
    return std::vector<RefTensor>{Broadcast2(in[0], in[1], f)};
  };
}

// Values in [0.1, 1] with a random sign, away from the kinks at 0 (and 6).
RefTensor AwayFromZero(const Shape& shape, double scale = 1.0) {
  RefTensor t = Random(shape, 0.1, 1.0);
  RefTensor sign = RandomInt(shape, 0, 1);
  for (int64_t i = 0; i < t.size(); ++i) t.v[i] *= (sign.v[i] == 0 ? -scale : scale);
  return t;
}

void AddActivationGradCases(std::vector<OpCase>& cases) {
  struct Act {
    const char* op;
    Reference ref;
    RefTensor second;  // features / outputs / y
    bool y_first;      // SigmoidGrad and TanhGrad take (y, dy)
  };
  const std::vector<Act> acts = {
      {"ReluGrad", Binary([](double g, double f) { return f > 0 ? g : 0.0; }),
       AwayFromZero(Shape{3, 7}, 3.0), false},
      {"Relu6Grad", Binary([](double g, double f) { return f > 0 && f < 6 ? g : 0.0; }),
       Values(Shape{2, 4}, {-2, -0.5, 0.5, 3, 5.5, 6.5, 8, 1}), false},
      {"EluGrad", Binary([](double g, double y) { return y < 0 ? g * (y + 1) : g; }),
       Random(Shape{3, 7}, -0.95, 3), false},
      {"SigmoidGrad", Binary([](double y, double dy) { return dy * y * (1 - y); }),
       Random(Shape{3, 7}, 0, 1), true},
      {"TanhGrad", Binary([](double y, double dy) { return dy * (1 - y * y); }),
       Random(Shape{3, 7}, -1, 1), true},
  };
  for (const Act& a : acts) {
    const std::string op = a.op;
    const RefTensor g = Random(a.second.shape);
    const std::vector<RefTensor> in =
        a.y_first ? std::vector<RefTensor>{a.second, g} : std::vector<RefTensor>{g, a.second};
    cases.push_back(
        {.name = op + "_random", .op = op, .inputs = in, .dtypes = kFloats, .reference = a.ref});
    cases.push_back({.name = op + "_scalar",
                     .op = op,
                     .inputs = {Scalar(0.5), Scalar(a.y_first ? 0.3 : 0.7)},
                     .dtypes = kFloats,
                     .reference = a.ref});
    cases.push_back({.name = op + "_empty",
                     .op = op,
                     .inputs = {Random(Shape{0, 3}), Random(Shape{0, 3})},
                     .dtypes = kFloats,
                     .reference = a.ref});
    cases.push_back({.name = op + "_shape_mismatch",
                     .op = op,
                     .inputs = {Random(Shape{2, 3}), Random(Shape{3, 2})},
                     .dtypes = {DType::kFloat},
                     .expect_error = "same shape"});
  }
}

// Sum of `x` over all but the channel axis.
RefTensor BiasAddGradRef(const RefTensor& x, bool nchw) {
  const int axis = nchw ? 1 : x.rank() - 1;
  const int64_t channels = x.dim(axis);
  int64_t inner = 1;
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  RefTensor out{Shape{channels}, std::vector<double>(channels, 0.0)};
  for (int64_t i = 0; i < x.size(); ++i) out.v[(i / inner) % channels] += x.v[i];
  return out;
}

void AddBiasAddGradCases(std::vector<OpCase>& cases) {
  auto ref = [](bool nchw) -> Reference {
    return [nchw](const std::vector<RefTensor>& in) {
      return std::vector<RefTensor>{BiasAddGradRef(in[0], nchw)};
    };
  };
  const AttrMap nchw = {{"data_format", MakeAttr("NCHW")}};
  // Sums of up to 40 values: half and bfloat16 round each partial sum they store.
  cases.push_back({.name = "BiasAddGrad_nhwc",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{2, 3, 4, 5})},
                   .dtypes = kFloats,
                   .reference = ref(false)});
  cases.push_back({.name = "BiasAddGrad_matrix",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{7, 3})},
                   .dtypes = kFloats,
                   .reference = ref(false)});
  cases.push_back({.name = "BiasAddGrad_nchw",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{2, 3, 4, 5})},
                   .attrs = nchw,
                   .dtypes = kFloats,
                   .reference = ref(true)});
  cases.push_back({.name = "BiasAddGrad_nchw_rank3",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{2, 3, 4})},
                   .attrs = nchw,
                   .dtypes = kFloats,
                   .reference = ref(true)});
  cases.push_back({.name = "BiasAddGrad_empty_batch",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{0, 4})},
                   .dtypes = kFloats,
                   .reference = ref(false)});
  cases.push_back({.name = "BiasAddGrad_vector",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{4})},
                   .dtypes = {DType::kFloat},
                   .expect_error = "rank >= 2"});
  cases.push_back({.name = "BiasAddGrad_nchw_matrix",
                   .op = "BiasAddGrad",
                   .inputs = {Random(Shape{3, 4})},
                   .attrs = nchw,
                   .dtypes = {DType::kFloat},
                   .expect_error = "rank >= 3"});
}

// loss_b = sum_j labels_bj * (lse(x_b) - x_bj), backprop = softmax(x) - labels,
// with labels given densely (a row of probabilities).
std::vector<RefTensor> XentRef(const RefTensor& x, const RefTensor& labels) {
  const int64_t batch = x.dim(0), classes = x.dim(1);
  RefTensor loss{Shape{batch}, std::vector<double>(batch, 0.0)};
  RefTensor backprop = x;
  for (int64_t b = 0; b < batch; ++b) {
    const double* row = &x.v[b * classes];
    const double max = classes > 0 ? *std::max_element(row, row + classes) : 0.0;
    double sum = 0;
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(row[j] - max);
    const double lse = max + std::log(sum);
    for (int64_t j = 0; j < classes; ++j) {
      const double label = labels.v[b * classes + j];
      if (label != 0) loss.v[b] += label * (lse - row[j]);
      backprop.v[b * classes + j] = std::exp(row[j] - lse) - label;
    }
  }
  return {loss, backprop};
}

// Random rows of probabilities (non-negative, summing to 1).
RefTensor RandomDistribution(int64_t batch, int64_t classes) {
  RefTensor t = Random(Shape{batch, classes}, 0.0, 1.0);
  for (int64_t b = 0; b < batch; ++b) {
    double sum = 0;
    for (int64_t j = 0; j < classes; ++j) sum += t.v[b * classes + j];
    for (int64_t j = 0; j < classes; ++j) t.v[b * classes + j] /= sum;
  }
  return t;
}

RefTensor OneHotOf(const RefTensor& labels, int64_t classes) {
  const int64_t batch = labels.size();
  RefTensor t{Shape{batch, classes}, std::vector<double>(batch * classes, 0.0)};
  for (int64_t b = 0; b < batch; ++b) t.v[b * classes + static_cast<int64_t>(labels.v[b])] = 1;
  return t;
}

void AddLossCases(std::vector<OpCase>& cases) {
  const Reference dense = [](const std::vector<RefTensor>& in) { return XentRef(in[0], in[1]); };
  const Reference sparse = [](const std::vector<RefTensor>& in) {
    return XentRef(in[0], OneHotOf(in[1], in[0].dim(1)));
  };
  const std::string xent = "SoftmaxCrossEntropyWithLogits";
  const std::string sxent = "SparseSoftmaxCrossEntropyWithLogits";
  const std::vector<DType> f32_64 = {DType::kFloat, DType::kDouble};
  cases.push_back({.name = xent + "_random",
                   .op = xent,
                   .inputs = {Random(Shape{4, 5}, -3, 3), RandomDistribution(4, 5)},
                   .dtypes = kFloats,
                   .reference = dense});
  cases.push_back({.name = xent + "_one_hot",
                   .op = xent,
                   .inputs = {Random(Shape{3, 6}, -3, 3), OneHotOf(RandomInt(Shape{3}, 0, 5), 6)},
                   .dtypes = kFloats,
                   .reference = dense});
  // exp(+-100) over- and underflows float: only the max-shifted form survives.
  cases.push_back({.name = xent + "_large_logits",
                   .op = xent,
                   .inputs = {Values(Shape{2, 3}, {100, -100, 0, -100, -100, 100}),
                              Values(Shape{2, 3}, {0, 1, 0, 0.5, 0, 0.5})},
                   .dtypes = f32_64,
                   .reference = dense});
  cases.push_back({.name = xent + "_empty_batch",
                   .op = xent,
                   .inputs = {Random(Shape{0, 4}), Random(Shape{0, 4})},
                   .dtypes = f32_64,
                   .reference = dense});
  cases.push_back({.name = xent + "_shape_mismatch",
                   .op = xent,
                   .inputs = {Random(Shape{2, 3}), Random(Shape{2, 4})},
                   .dtypes = {DType::kFloat},
                   .expect_error = "same shape"});
  cases.push_back({.name = xent + "_vector",
                   .op = xent,
                   .inputs = {Random(Shape{3}), Random(Shape{3})},
                   .dtypes = {DType::kFloat},
                   .expect_error = "rank 2"});

  for (const DType label_type : {DType::kInt32, DType::kInt64}) {
    const std::string suffix = label_type == DType::kInt32 ? "_int32" : "_int64";
    cases.push_back({.name = sxent + "_random" + suffix,
                     .op = sxent,
                     .inputs = {Random(Shape{5, 4}, -3, 3), RandomInt(Shape{5}, 0, 3)},
                     .input_dtypes = {DType::kInvalid, label_type},
                     .dtypes = kFloats,
                     .reference = sparse});
    cases.push_back({.name = sxent + "_large_logits" + suffix,
                     .op = sxent,
                     .inputs = {Values(Shape{3, 3}, {100, -100, 0, -100, -100, 100, 100, 0, -100}),
                                Values(Shape{3}, {1, 2, 0})},
                     .input_dtypes = {DType::kInvalid, label_type},
                     .dtypes = f32_64,
                     .reference = sparse});
    cases.push_back({.name = sxent + "_label_too_large" + suffix,
                     .op = sxent,
                     .inputs = {Random(Shape{2, 3}), Values(Shape{2}, {0, 7})},
                     .input_dtypes = {DType::kInvalid, label_type},
                     .dtypes = {DType::kFloat},
                     .expect_error = "label value of 7"});
    cases.push_back({.name = sxent + "_label_negative" + suffix,
                     .op = sxent,
                     .inputs = {Random(Shape{2, 3}), Values(Shape{2}, {-1, 0})},
                     .input_dtypes = {DType::kInvalid, label_type},
                     .dtypes = {DType::kFloat},
                     .expect_error = "label value of -1"});
  }
  cases.push_back({.name = sxent + "_batch_mismatch",
                   .op = sxent,
                   .inputs = {Random(Shape{2, 3}), Values(Shape{3}, {0, 1, 2})},
                   .input_dtypes = {DType::kInvalid, DType::kInt32},
                   .dtypes = {DType::kFloat},
                   .expect_error = "batch size"});

  const Reference l2 = [](const std::vector<RefTensor>& in) {
    double sum = 0;
    for (double v : in[0].v) sum += v * v;
    return std::vector<RefTensor>{Scalar(sum / 2)};
  };
  cases.push_back({.name = "L2Loss_matrix",
                   .op = "L2Loss",
                   .inputs = {Random(Shape{3, 5})},
                   .dtypes = kFloats,
                   .reference = l2});
  cases.push_back({.name = "L2Loss_scalar",
                   .op = "L2Loss",
                   .inputs = {Scalar(-1.5)},
                   .dtypes = kFloats,
                   .reference = l2});
  cases.push_back({.name = "L2Loss_empty",
                   .op = "L2Loss",
                   .inputs = {Random(Shape{0, 2})},
                   .dtypes = kFloats,
                   .reference = l2});
}

}  // namespace

std::vector<OpCase> NnGradOpCases() {
  std::vector<OpCase> cases;
  AddActivationGradCases(cases);
  AddBiasAddGradCases(cases);
  AddLossCases(cases);
  for (OpCase& c : NnGradWindowOpCases()) cases.push_back(std::move(c));
  for (OpCase& c : NnBatchNormGradOpCases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace gradserve::testing
