// Conformance cases for the nn op family (see op_test_util.h): activations,
// softmax, BiasAdd and FusedBatchNormV3 here; Conv2D and pooling in
// nn_conv_cases.cc.
#include <algorithm>
#include <cmath>
#include <string>

#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

std::vector<OpCase> NnConvOpCases();  // nn_conv_cases.cc
std::vector<OpCase> NnGradOpCases();  // nn_grad_ops_cases.cc

namespace {

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};
const std::vector<DType> kSignedInts = {DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64};

Reference Unary(std::function<double(double)> f) {
  return [f](const std::vector<RefTensor>& in) { return std::vector<RefTensor>{Map(in[0], f)}; };
}

RefTensor SoftmaxRef(const RefTensor& x, bool log) {
  RefTensor out = x;
  const int64_t cols = x.dim(x.rank() - 1);
  for (int64_t r = 0; cols > 0 && r < x.size() / cols; ++r) {
    const double* row = &x.v[r * cols];
    const double max = *std::max_element(row, row + cols);
    double sum = 0;
    for (int64_t i = 0; i < cols; ++i) sum += std::exp(row[i] - max);
    for (int64_t i = 0; i < cols; ++i) {
      out.v[r * cols + i] = log ? row[i] - max - std::log(sum) : std::exp(row[i] - max) / sum;
    }
  }
  return out;
}

// Index of the channel of element i of a tensor of `shape` with channels on `axis`.
int64_t ChannelOf(const Shape& shape, int axis, int64_t i) {
  int64_t inner = 1;
  for (int d = axis + 1; d < shape.rank(); ++d) inner *= shape.dim(d);
  return (i / inner) % shape.dim(axis);
}

RefTensor BiasAddRef(const RefTensor& value, const RefTensor& bias, bool nchw) {
  RefTensor out = value;
  const int axis = nchw ? 1 : value.rank() - 1;
  for (int64_t i = 0; i < out.size(); ++i) out.v[i] += bias.v[ChannelOf(value.shape, axis, i)];
  return out;
}

void AddActivationCases(std::vector<OpCase>& cases) {
  const auto relu = Unary([](double x) { return std::max(x, 0.0); });
  const auto relu6 = Unary([](double x) { return std::min(std::max(x, 0.0), 6.0); });
  struct Act {
    const char* op;
    Reference ref;
    double lo, hi;
  };
  const std::vector<Act> acts = {
      {"Relu", relu, -3, 3},
      {"Relu6", relu6, -10, 10},
      {"Elu", Unary([](double x) { return x < 0 ? std::expm1(x) : x; }), -4, 4},
      {"Sigmoid", Unary([](double x) { return 1 / (1 + std::exp(-x)); }), -10, 10},
      {"Tanh", Unary([](double x) { return std::tanh(x); }), -5, 5},
  };
  for (const Act& a : acts) {
    const std::string op = a.op;
    cases.push_back({.name = op + "_random", .op = op, .inputs = {Random(Shape{3, 7}, a.lo, a.hi)},
                     .dtypes = kFloats, .reference = a.ref});
    cases.push_back({.name = op + "_scalar", .op = op, .inputs = {Random(Shape{}, a.lo, a.hi)},
                     .dtypes = kFloats, .reference = a.ref});
    cases.push_back({.name = op + "_empty", .op = op, .inputs = {Random(Shape{0, 4})},
                     .dtypes = kFloats, .reference = a.ref});
  }
  cases.push_back({.name = "Elu_int32", .op = "Elu", .inputs = {RandomInt(Shape{3}, -3, 3)},
                   .dtypes = {DType::kInt32}, .expect_error = "is not one of"});
  cases.push_back({.name = "Sigmoid_saturated", .op = "Sigmoid",
                   .inputs = {Values(Shape{4}, {-80, 80, -30, 30})}, .dtypes = kFloats,
                   .reference = acts[3].ref});
  for (const char* op : {"Relu", "Relu6"}) {
    const auto& ref = std::string(op) == "Relu" ? relu : relu6;
    cases.push_back({.name = std::string(op) + "_signed_ints", .op = op,
                     .inputs = {RandomInt(Shape{4, 5}, -50, 50)}, .dtypes = kSignedInts,
                     .reference = ref});
    cases.push_back({.name = std::string(op) + "_uint8", .op = op,
                     .inputs = {RandomInt(Shape{12}, 0, 255)}, .dtypes = {DType::kUInt8},
                     .reference = ref});
  }
  cases.push_back({.name = "Relu6_around_6", .op = "Relu6",
                   .inputs = {RandomInt(Shape{2, 8}, -3, 9)}, .dtypes = kSignedInts,
                   .reference = relu6});
}

void AddSoftmaxCases(std::vector<OpCase>& cases) {
  for (const bool log : {false, true}) {
    const std::string op = log ? "LogSoftmax" : "Softmax";
    const Reference ref = [log](const std::vector<RefTensor>& in) {
      return std::vector<RefTensor>{SoftmaxRef(in[0], log)};
    };
    struct Spec {
      const char* name;
      RefTensor x;
    };
    const std::vector<Spec> specs = {
        {"matrix", Random(Shape{4, 7}, -3, 3)},
        {"rank3", Random(Shape{2, 3, 5}, -3, 3)},
        {"vector", Random(Shape{6}, -3, 3)},
        {"one_class", Random(Shape{3, 1})},
        // exp(+-100) over- and underflows float: only the max-shifted form survives.
        {"large_logits", Random(Shape{3, 8}, -100, 100)},
        {"large_equal", Values(Shape{2, 3}, {1000, 1000, 999, -1000, -1000, -80})},
        {"empty_rows", Random(Shape{0, 5})},
        {"empty_classes", Random(Shape{3, 0})},
    };
    for (const Spec& s : specs) {
      cases.push_back({.name = op + "_" + s.name, .op = op, .inputs = {s.x}, .dtypes = kFloats,
                       .reference = ref});
    }
    cases.push_back({.name = op + "_scalar", .op = op, .inputs = {Scalar(1.0)},
                     .dtypes = {DType::kFloat}, .expect_error = "rank >= 1"});
  }
}

void AddBiasAddCases(std::vector<OpCase>& cases) {
  auto ref = [](bool nchw) -> Reference {
    return [nchw](const std::vector<RefTensor>& in) {
      return std::vector<RefTensor>{BiasAddRef(in[0], in[1], nchw)};
    };
  };
  const AttrMap nchw = {{"data_format", MakeAttr("NCHW")}};
  cases.push_back({.name = "BiasAdd_nhwc", .op = "BiasAdd",
                   .inputs = {Random(Shape{2, 3, 4, 5}), Random(Shape{5})}, .dtypes = kFloats,
                   .reference = ref(false)});
  cases.push_back({.name = "BiasAdd_matrix", .op = "BiasAdd",
                   .inputs = {Random(Shape{3, 4}), Random(Shape{4})}, .dtypes = kFloats,
                   .reference = ref(false)});
  cases.push_back({.name = "BiasAdd_signed_ints", .op = "BiasAdd",
                   .inputs = {RandomInt(Shape{2, 3, 4}, -50, 50), RandomInt(Shape{4}, -50, 50)},
                   .dtypes = kSignedInts, .reference = ref(false)});
  cases.push_back({.name = "BiasAdd_uint8", .op = "BiasAdd",
                   .inputs = {RandomInt(Shape{3, 5}, 0, 100), RandomInt(Shape{5}, 0, 100)},
                   .dtypes = {DType::kUInt8}, .reference = ref(false)});
  cases.push_back({.name = "BiasAdd_nchw", .op = "BiasAdd",
                   .inputs = {Random(Shape{2, 3, 4, 5}), Random(Shape{3})}, .attrs = nchw,
                   .dtypes = kFloats, .reference = ref(true)});
  cases.push_back({.name = "BiasAdd_nchw_rank3", .op = "BiasAdd",
                   .inputs = {Random(Shape{2, 3, 4}), Random(Shape{3})}, .attrs = nchw,
                   .dtypes = kFloats, .reference = ref(true)});
  cases.push_back({.name = "BiasAdd_empty", .op = "BiasAdd",
                   .inputs = {Random(Shape{0, 4}), Random(Shape{4})}, .dtypes = kFloats,
                   .reference = ref(false)});
  struct Bad {
    const char* name;
    Shape value, bias;
    AttrMap attrs;
    const char* error;
  };
  const std::vector<Bad> bad = {
      {"bias_size", {2, 3}, {4}, {}, "bias has 4 elements"},
      {"nchw_bias_size", {2, 3, 4, 5}, {5}, nchw, "bias has 5 elements"},
      {"vector_value", {3}, {3}, {}, "rank >= 2"},
      {"nchw_matrix", {3, 4}, {3}, nchw, "rank >= 3"},
      {"matrix_bias", {2, 3}, {1, 3}, {}, "rank 1"},
      {"bad_format", {2, 3}, {3}, {{"data_format", MakeAttr("NCDHW")}}, "is not one of"},
  };
  for (const Bad& b : bad) {
    cases.push_back({.name = absl::StrCat("BiasAdd_", b.name), .op = "BiasAdd",
                     .inputs = {Random(b.value), Random(b.bias)}, .attrs = b.attrs,
                     .dtypes = {DType::kFloat}, .expect_error = b.error});
  }
}

// FusedBatchNormV3's six outputs, from TF's CPU kernel semantics.
std::vector<RefTensor> BatchNormRef(const std::vector<RefTensor>& in, int axis, double epsilon,
                                    bool training, double factor) {
  const RefTensor& x = in[0];
  const int64_t channels = x.dim(axis);
  const double nan = std::nan("");
  RefTensor mean{Shape{channels}, std::vector<double>(channels, 0.0)};
  RefTensor var = mean, batch_mean = mean, batch_var = mean;
  if (x.size() == 0) {
    for (RefTensor* t : {&mean, &var, &batch_mean, &batch_var}) std::fill(t->v.begin(), t->v.end(), nan);
    return {x, batch_mean, batch_var, mean, var, Scalar(0)};
  }
  if (training) {
    const double n = static_cast<double>(x.size() / channels);
    for (int64_t i = 0; i < x.size(); ++i) mean.v[ChannelOf(x.shape, axis, i)] += x.v[i] / n;
    for (int64_t i = 0; i < x.size(); ++i) {
      const int64_t c = ChannelOf(x.shape, axis, i);
      var.v[c] += (x.v[i] - mean.v[c]) * (x.v[i] - mean.v[c]) / n;
    }
    const double bessel = n > 1 ? n / (n - 1) : 1;
    for (int64_t c = 0; c < channels; ++c) {
      batch_mean.v[c] = (1 - factor) * (factor == 1 ? 0 : in[3].v[c]) + factor * mean.v[c];
      batch_var.v[c] = (1 - factor) * (factor == 1 ? 0 : in[4].v[c]) + factor * bessel * var.v[c];
    }
  } else {
    mean = batch_mean = in[3];
    var = batch_var = in[4];
  }
  RefTensor y = x;
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t c = ChannelOf(x.shape, axis, i);
    y.v[i] = (x.v[i] - mean.v[c]) / std::sqrt(var.v[c] + epsilon) * in[1].v[c] + in[2].v[c];
  }
  return {y, batch_mean, batch_var, mean, var, Scalar(0)};
}

void AddBatchNormCases(std::vector<OpCase>& cases) {
  const std::vector<DType> types = {DType::kFloat, DType::kHalf, DType::kBFloat16};
  const std::vector<DType> u = {DType::kInvalid, DType::kFloat, DType::kFloat, DType::kFloat,
                                DType::kFloat};
  struct Spec {
    const char* name;
    Shape x;
    const char* format;
    bool training;
    float factor = 1.0f;
    bool empty_stats = false;  // training with factor 1 may pass empty mean/variance
  };
  const std::vector<Spec> specs = {
      {"inference_nhwc", {2, 3, 4, 5}, "NHWC", false},
      {"inference_nchw", {2, 3, 4, 5}, "NCHW", false},
      {"inference_ndhwc", {1, 2, 3, 2, 4}, "NDHWC", false},
      {"inference_empty", {0, 2, 2, 3}, "NHWC", false},
      {"training_nhwc", {2, 3, 4, 5}, "NHWC", true, 1.0f, true},
      {"training_nchw", {2, 3, 4, 5}, "NCHW", true},
      {"training_avg_factor", {3, 2, 2, 4}, "NHWC", true, 0.25f},
      {"training_ncdhw_single", {1, 3, 1, 1, 1}, "NCDHW", true, 0.5f},
      {"training_empty", {0, 2, 2, 3}, "NHWC", true},
  };
  const float epsilon = 0.001f;
  for (const Spec& s : specs) {
    const std::string format = s.format;
    const int rank = s.x.rank();
    const int axis = format == "NHWC" || format == "NDHWC" ? rank - 1 : 1;
    const int64_t c = s.x.dim(axis), stats = s.empty_stats ? 0 : c;
    const bool training = s.training;
    const double factor = s.factor;
    cases.push_back({
        .name = absl::StrCat("FusedBatchNormV3_", s.name), .op = "FusedBatchNormV3",
        .inputs = {Random(s.x, -2, 3), Random(Shape{c}, 0.5, 1.5), Random(Shape{c}),
                   Random(Shape{stats}), Random(Shape{stats}, 0.1, 2)},
        .input_dtypes = u,
        .attrs = {{"epsilon", MakeAttr(epsilon)}, {"data_format", MakeAttr(format)},
                  {"is_training", MakeAttr(training)},
                  {"exponential_avg_factor", MakeAttr(s.factor)}},
        .dtypes = types,
        .reference = [axis, epsilon, training, factor](const std::vector<RefTensor>& in) {
          return BatchNormRef(in, axis, epsilon, training, factor);
        }});
  }
  struct Bad {
    const char* name;
    Shape x, scale, mean;
    AttrMap attrs;
    const char* error;
  };
  const AttrMap inference = {{"is_training", MakeAttr(false)}};
  const std::vector<Bad> bad = {
      {"scale_size", {1, 2, 2, 3}, {4}, {3}, inference, "scale has 4 elements"},
      {"mean_size", {1, 2, 2, 3}, {3}, {2}, inference, "mean has 2 elements"},
      {"training_factor_mean_size", {1, 2, 2, 3}, {3}, {0},
       {{"exponential_avg_factor", MakeAttr(0.5f)}}, "mean has 0 elements"},
      {"x_rank3", {2, 2, 3}, {3}, {3}, inference, "rank 4"},
      {"scale_matrix", {1, 2, 2, 3}, {1, 3}, {3}, inference, "rank 1"},
      {"ndhwc_rank4", {1, 2, 2, 3}, {3}, {3}, {{"data_format", MakeAttr("NDHWC")}}, "rank 5"},
      {"bad_u", {1, 2, 2, 3}, {3}, {3}, {{"U", MakeAttr(DType::kDouble)}}, "is not one of"},
  };
  for (const Bad& b : bad) {
    cases.push_back({.name = absl::StrCat("FusedBatchNormV3_", b.name), .op = "FusedBatchNormV3",
                     .inputs = {Random(b.x), Random(b.scale), Random(b.scale), Random(b.mean),
                                Random(b.mean, 0.1, 1)},
                     .input_dtypes = u, .attrs = b.attrs, .dtypes = {DType::kFloat},
                     .expect_error = b.error});
  }
}

}  // namespace

std::vector<OpCase> NnOpCases() {
  std::vector<OpCase> cases;
  AddActivationCases(cases);
  AddSoftmaxCases(cases);
  AddBiasAddCases(cases);
  AddBatchNormCases(cases);
  for (OpCase& c : NnConvOpCases()) cases.push_back(std::move(c));
  for (OpCase& c : NnGradOpCases()) cases.push_back(std::move(c));
  return cases;
}

}  // namespace gradserve::testing
