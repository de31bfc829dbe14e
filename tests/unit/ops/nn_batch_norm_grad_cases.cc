// Conformance cases for FusedBatchNormGradV3 (see op_test_util.h), against a
// float64 reference of TensorFlow's CPU semantics. NnGradOpCases
// (nn_grad_ops_cases.cc) includes them.
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

// Inputs: y_backprop and x in the dtype under test; scale and reserve_space_1..3 float.
const std::vector<DType> kInputTypes = {DType::kInvalid, DType::kInvalid, DType::kFloat,
                                        DType::kFloat,   DType::kFloat,   DType::kFloat};

int ChannelAxis(const std::string& format, int rank) {
  return format == "NHWC" || format == "NDHWC" ? rank - 1 : 1;
}

// Index of the channel of element i of a tensor of `shape` with channels on `axis`.
int64_t ChannelOf(const Shape& shape, int axis, int64_t i) {
  int64_t inner = 1;
  for (int d = axis + 1; d < shape.rank(); ++d) inner *= shape.dim(d);
  return (i / inner) % shape.dim(axis);
}

// (x_backprop, scale_backprop, offset_backprop, [0], [0]) with m, v = reserve_space_1/2,
// r = 1 / sqrt(v + epsilon) and sums over each channel's n elements:
//   d offset = sum(dy), d scale = r * sum(dy (x - m)),
//   dx = scale r (dy - sum(dy) / n - (x - m) r^2 sum(dy (x - m)) / n)   (training),
//   dx = scale r dy                                                       (inference).
std::vector<RefTensor> BatchNormGradRef(const std::vector<RefTensor>& in, int axis, double epsilon,
                                        bool training) {
  const RefTensor &dy = in[0], &x = in[1], &scale = in[2], &mean = in[3], &var = in[4];
  const int64_t channels = x.dim(axis);
  RefTensor d_scale{Shape{channels}, std::vector<double>(channels, 0.0)};
  RefTensor d_offset = d_scale, dy_xc = d_scale;
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t c = ChannelOf(x.shape, axis, i);
    d_offset.v[c] += dy.v[i];
    dy_xc.v[c] += dy.v[i] * (x.v[i] - mean.v[c]);
  }
  for (int64_t c = 0; c < channels; ++c) d_scale.v[c] = dy_xc.v[c] / std::sqrt(var.v[c] + epsilon);
  RefTensor dx = x;
  const double n = channels > 0 ? static_cast<double>(x.size() / channels) : 0;
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t c = ChannelOf(x.shape, axis, i);
    const double r2 = 1 / (var.v[c] + epsilon);
    const double sr = scale.v[c] * std::sqrt(r2);
    dx.v[i] = training
                  ? sr * (dy.v[i] - d_offset.v[c] / n - (x.v[i] - mean.v[c]) * r2 * dy_xc.v[c] / n)
                  : sr * dy.v[i];
  }
  const RefTensor empty{Shape{0}, {}};
  return {dx, d_scale, d_offset, empty, empty};
}

// The batch mean and biased variance of x per channel (what the forward op saves
// in training).
std::pair<RefTensor, RefTensor> BatchStats(const RefTensor& x, int axis) {
  const int64_t channels = x.dim(axis);
  RefTensor mean{Shape{channels}, std::vector<double>(channels, 0.0)};
  RefTensor var = mean;
  if (x.size() == 0) return {mean, var};
  const double n = static_cast<double>(x.size() / channels);
  for (int64_t i = 0; i < x.size(); ++i) mean.v[ChannelOf(x.shape, axis, i)] += x.v[i] / n;
  for (int64_t i = 0; i < x.size(); ++i) {
    const int64_t c = ChannelOf(x.shape, axis, i);
    var.v[c] += (x.v[i] - mean.v[c]) * (x.v[i] - mean.v[c]) / n;
  }
  return {mean, var};
}

void AddGoodCases(std::vector<OpCase>& cases) {
  struct Spec {
    const char* name;
    Shape x;
    const char* format;
    bool training;
  };
  const std::vector<Spec> specs = {
      {"training_nhwc", {2, 3, 4, 5}, "NHWC", true},
      {"training_nchw", {2, 3, 4, 5}, "NCHW", true},
      {"training_ndhwc", {1, 2, 3, 2, 4}, "NDHWC", true},
      {"training_ncdhw", {2, 3, 1, 2, 3}, "NCDHW", true},
      {"training_one_per_channel", {1, 1, 1, 3}, "NHWC", true},
      {"training_empty", {0, 2, 2, 3}, "NHWC", true},
      {"inference_nhwc", {2, 3, 4, 5}, "NHWC", false},
      {"inference_nchw", {3, 4, 2, 3}, "NCHW", false},
      {"inference_empty", {0, 2, 2, 3}, "NHWC", false},
  };
  const float epsilon = 0.001f;
  for (const Spec& s : specs) {
    const std::string format = s.format;
    const int axis = ChannelAxis(format, s.x.rank());
    const int64_t c = s.x.dim(axis);
    const RefTensor x = Random(s.x, -2, 3);
    // Training: the saved batch statistics of x; inference: population statistics.
    auto [mean, var] =
        s.training ? BatchStats(x, axis) : std::pair{Random(Shape{c}), Random(Shape{c}, 0.1, 2)};
    const bool training = s.training;
    cases.push_back({.name = absl::StrCat("FusedBatchNormGradV3_", s.name),
                     .op = "FusedBatchNormGradV3",
                     .inputs = {Random(s.x), x, Random(Shape{c}, 0.5, 1.5), mean, var, Scalar(0)},
                     .input_dtypes = kInputTypes,
                     .attrs = {{"epsilon", MakeAttr(epsilon)},
                               {"data_format", MakeAttr(format)},
                               {"is_training", MakeAttr(training)}},
                     .dtypes = {DType::kFloat, DType::kHalf, DType::kBFloat16},
                     .reference = [axis, epsilon, training](const std::vector<RefTensor>& in) {
                       return BatchNormGradRef(in, axis, epsilon, training);
                     }});
  }
}

void AddBadCases(std::vector<OpCase>& cases) {
  struct Bad {
    const char* name;
    Shape dy, x, scale, mean;
    AttrMap attrs;
    const char* error;
  };
  const std::vector<Bad> bad = {
      {"shape_mismatch", {1, 2, 2, 3}, {2, 2, 2, 3}, {3}, {3}, {}, "same shape"},
      {"scale_size", {1, 2, 2, 3}, {1, 2, 2, 3}, {4}, {3}, {}, "scale has 4 elements"},
      {"mean_size", {1, 2, 2, 3}, {1, 2, 2, 3}, {3}, {2}, {}, "reserve_space_1 has 2 elements"},
      {"nchw_scale_size",
       {1, 2, 2, 3},
       {1, 2, 2, 3},
       {3},
       {3},
       {{"data_format", MakeAttr("NCHW")}},
       "scale has 3 elements"},
      {"x_rank3", {2, 2, 3}, {2, 2, 3}, {3}, {3}, {}, "rank 4"},
      {"ndhwc_rank4",
       {1, 2, 2, 3},
       {1, 2, 2, 3},
       {3},
       {3},
       {{"data_format", MakeAttr("NDHWC")}},
       "rank 5"},
      {"scale_matrix", {1, 2, 2, 3}, {1, 2, 2, 3}, {1, 3}, {3}, {}, "rank 1"},
      {"bad_format",
       {1, 2, 2, 3},
       {1, 2, 2, 3},
       {3},
       {3},
       {{"data_format", MakeAttr("NCHW_VECT_C")}},
       "is not one of"},
      {"bad_u",
       {1, 2, 2, 3},
       {1, 2, 2, 3},
       {3},
       {3},
       {{"U", MakeAttr(DType::kDouble)}},
       "is not one of"},
  };
  for (const Bad& b : bad) {
    cases.push_back({.name = absl::StrCat("FusedBatchNormGradV3_", b.name),
                     .op = "FusedBatchNormGradV3",
                     .inputs = {Random(b.dy), Random(b.x), Random(b.scale), Random(b.mean),
                                Random(b.mean, 0.1, 1), Scalar(0)},
                     .input_dtypes = kInputTypes,
                     .attrs = b.attrs,
                     .dtypes = {DType::kFloat},
                     .expect_error = b.error});
  }
}

}  // namespace

std::vector<OpCase> NnBatchNormGradOpCases() {
  std::vector<OpCase> cases;
  AddGoodCases(cases);
  AddBadCases(cases);
  return cases;
}

}  // namespace gradserve::testing
