// Conformance cases for the reduction op family (see op_test_util.h).
#include <cmath>
#include <limits>
#include <tuple>

#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

using Ins = std::vector<RefTensor>;

const std::vector<DType> kFloats = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16};
const std::vector<DType> kInts = {DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64,
                                  DType::kUInt8};

enum class Kind { kSum, kMean, kMax, kMin };

// Reduces `x` over `axes` by visiting every element. `truncate` rounds the
// mean toward zero (integer Mean) and makes an empty integer mean 0.
RefTensor ReduceRef(const RefTensor& x, const std::vector<int64_t>& axes, bool keep_dims,
                    Kind kind, bool truncate) {
  const int rank = x.rank();
  std::vector<bool> reduced(rank, false);
  for (int64_t a : axes) reduced[a < 0 ? a + rank : a] = true;
  Shape out_shape, kept;  // kept: the output without keep_dims' 1s
  for (int d = 0; d < rank; ++d) {
    if (!reduced[d]) kept.AddDim(x.dim(d));
    if (!reduced[d] || keep_dims) out_shape.AddDim(reduced[d] ? 1 : x.dim(d));
  }
  const double init = kind == Kind::kMax   ? -INFINITY
                      : kind == Kind::kMin ? INFINITY
                                           : 0.0;
  RefTensor out{out_shape, std::vector<double>(kept.num_elements(), init)};
  const std::vector<int64_t> xs = Strides(x.shape), ks = Strides(kept);
  for (int64_t i = 0; i < x.size(); ++i) {
    int64_t o = 0;
    for (int d = 0, k = 0; d < rank; ++d) {
      if (reduced[d]) continue;
      o += (i / xs[d]) % x.dim(d) * ks[k++];
    }
    double& acc = out.v[o];
    const double v = x.v[i];
    if (kind == Kind::kMax) acc = std::max(acc, v);
    else if (kind == Kind::kMin) acc = std::min(acc, v);
    else acc += v;
  }
  if (kind == Kind::kMean) {
    const double count = out.size() > 0 ? static_cast<double>(x.size() / out.size()) : 0;
    for (double& v : out.v) {
      v = truncate ? (count > 0 ? std::trunc(v / count) : 0) : v / count;
    }
  }
  return out;
}

RefTensor ArgMaxRef(const RefTensor& x, int64_t axis) {
  if (axis < 0) axis += x.rank();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= x.dim(d);
  for (int d = axis + 1; d < x.rank(); ++d) inner *= x.dim(d);
  const int64_t n = x.dim(axis);
  Shape out_shape = x.shape;
  out_shape.RemoveDim(static_cast<int>(axis));
  RefTensor out{out_shape, std::vector<double>(outer * inner)};
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      int64_t best = 0;
      for (int64_t j = 1; j < n; ++j) {
        if (x.v[(o * n + j) * inner + i] > x.v[(o * n + best) * inner + i]) best = j;
      }
      out.v[o * inner + i] = static_cast<double>(best);
    }
  return out;
}

RefTensor Axes(const std::vector<int64_t>& axes) {
  return Values(Shape{static_cast<int64_t>(axes.size())},
                std::vector<double>(axes.begin(), axes.end()));
}

struct Spec {
  std::string name;
  Shape shape;
  std::vector<int64_t> axes;
  bool keep_dims = false;
  bool scalar_axis = false;  // axes as a scalar, Tidx int64
  bool fed = false;          // axes fed at run time (the kernel checks them)
};

void AddReductionCases(std::vector<OpCase>& cases, const char* op, Kind kind) {
  const std::vector<Spec> specs = {
      {.name = "axis1", .shape = {3, 4, 5}, .axes = {1}},
      {.name = "last_axis_keep_dims", .shape = {3, 4, 5}, .axes = {-1}, .keep_dims = true},
      {.name = "first_axis", .shape = {6, 7}, .axes = {0}},
      {.name = "all_axes", .shape = {3, 4, 5}, .axes = {0, 1, 2}},
      {.name = "rkrk", .shape = {2, 3, 4, 5}, .axes = {0, 2}},
      {.name = "krkr_keep_dims", .shape = {2, 3, 4, 5}, .axes = {3, 1}, .keep_dims = true},
      // Rows of 32 or more take the row-wise paths.
      {.name = "long_rows", .shape = {3, 40}, .axes = {1}},
      {.name = "long_row", .shape = {45}, .axes = {0}},
      {.name = "wide_rows", .shape = {2, 3, 40}, .axes = {-2}},
      {.name = "wide_first_axis", .shape = {6, 40}, .axes = {0}, .keep_dims = true},
      {.name = "rank6_alternating", .shape = {2, 3, 2, 3, 2, 2}, .axes = {0, 2, 4}},
      {.name = "size1_axis", .shape = {3, 1, 4}, .axes = {1}},
      {.name = "size1_dims", .shape = {1, 3, 1, 4}, .axes = {0, 2, 3}, .keep_dims = true},
      {.name = "scalar_axis", .shape = {4, 5}, .axes = {1}, .scalar_axis = true},
      {.name = "empty_axes", .shape = {3, 4}, .axes = {}},
      {.name = "scalar_input", .shape = {}, .axes = {}},
      {.name = "empty_output", .shape = {0, 3}, .axes = {1}},
      {.name = "axes_fed", .shape = {3, 4, 5}, .axes = {2, -3}, .fed = true},
      {.name = "empty_reduced", .shape = {0, 3}, .axes = {0}},
  };
  for (const Spec& s : specs) {
    for (bool ints : {false, true}) {
      // Max of nothing is -inf for floats, which the harness cannot compare
      // (math_ops_test.cc checks it), and the type's lowest value for integers
      // (AddEmptyIntExtremaCases).
      if (s.name == "empty_reduced" && (kind == Kind::kMax || kind == Kind::kMin)) continue;
      // Small integer sums stay in range of int8 and uint8.
      const int64_t hi = kind == Kind::kSum || kind == Kind::kMean ? 2 : 100;
      const std::vector<int64_t> axes = s.axes;
      const bool keep = s.keep_dims;
      cases.push_back({
          .name = absl::StrCat(op, "_", s.name, ints ? "_int" : ""),
          .op = op,
          .inputs = {ints ? RandomInt(s.shape, 0, hi) : Random(s.shape),
                     s.scalar_axis ? Scalar(static_cast<double>(axes[0])) : Axes(axes)},
          .input_dtypes = {DType::kInvalid, s.scalar_axis ? DType::kInt64 : DType::kInt32},
          .constant = {false, !s.fed},
          .attrs = {{"keep_dims", MakeAttr(keep)}},
          .dtypes = ints ? kInts : kFloats,
          .reference = [axes, keep, kind, ints](const Ins& in) {
            return Ins{ReduceRef(in[0], axes, keep, kind, ints)};
          },
      });
    }
  }
  const Reference no_ref = nullptr;
  for (bool fed : {false, true}) {
    const std::string suffix = fed ? "_fed" : "";
    cases.push_back({.name = absl::StrCat(op, "_axis_out_of_range", suffix), .op = op,
                     .inputs = {Random(Shape{2, 3}), Axes({2})},
                     .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, !fed},
                     .reference = no_ref, .expect_error = "invalid reduction dimension 2"});
    cases.push_back({.name = absl::StrCat(op, "_duplicate_axes", suffix), .op = op,
                     .inputs = {Random(Shape{2, 3}), Axes({1, -1})},
                     .input_dtypes = {DType::kInvalid, DType::kInt64}, .constant = {false, !fed},
                     .reference = no_ref, .expect_error = "duplicate dimension"});
  }
  cases.push_back({.name = absl::StrCat(op, "_axes_matrix"), .op = op,
                   .inputs = {Random(Shape{2, 3}), Values(Shape{1, 1}, {0})},
                   .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, true},
                   .expect_error = "scalar or vector"});
  cases.push_back({.name = absl::StrCat(op, "_float_axes"), .op = op,
                   .inputs = {Random(Shape{2, 3}), Axes({0})},
                   .input_dtypes = {DType::kInvalid, DType::kFloat}, .constant = {false, true},
                   .expect_error = "attr 'Tidx' = float is not one of"});
}

// Max and Min of nothing are the type's lowest and highest values.
void AddEmptyIntExtremaCases(std::vector<OpCase>& cases) {
  const std::vector<std::tuple<DType, double, double>> limits = {
      {DType::kInt8, -128, 127},
      {DType::kUInt8, 0, 255},
      {DType::kInt16, -32768, 32767},
      {DType::kInt32, std::numeric_limits<int32_t>::lowest(), std::numeric_limits<int32_t>::max()},
      {DType::kInt64, static_cast<double>(std::numeric_limits<int64_t>::lowest()),
       static_cast<double>(std::numeric_limits<int64_t>::max())},
  };
  for (const auto& [dtype, lo, hi] : limits) {
    for (bool is_max : {true, false}) {
      const double want = is_max ? lo : hi;
      cases.push_back({.name = absl::StrCat(is_max ? "Max" : "Min", "_empty_reduced_",
                                            DTypeName(dtype)),
                       .op = is_max ? "Max" : "Min",
                       .inputs = {Random(Shape{2, 0}), Axes({1})},
                       .input_dtypes = {DType::kInvalid, DType::kInt32},
                       .constant = {false, true},
                       .dtypes = {dtype},
                       .reference = [want](const Ins&) {
                         return Ins{Values(Shape{2}, {want, want})};
                       }});
    }
  }
  cases.push_back({.name = "Mean_int_truncates_toward_zero", .op = "Mean",
                   .inputs = {RandomInt(Shape{4, 7}, -9, 9), Axes({1})},
                   .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, true},
                   .dtypes = {DType::kInt8, DType::kInt16, DType::kInt32, DType::kInt64},
                   .reference = [](const Ins& in) {
                     return Ins{ReduceRef(in[0], {1}, false, Kind::kMean, true)};
                   }});
}

void AddArgMaxCases(std::vector<OpCase>& cases) {
  std::vector<DType> all = kFloats;
  all.insert(all.end(), kInts.begin(), kInts.end());
  all.push_back(DType::kBool);
  auto ref = [](int64_t axis) {
    return [axis](const Ins& in) { return Ins{ArgMaxRef(in[0], axis)}; };
  };
  for (int64_t axis : {0, 1, 2}) {
    // Few distinct values: ties must go to the first index.
    cases.push_back({.name = absl::StrCat("ArgMax_axis", axis), .op = "ArgMax",
                     .inputs = {RandomInt(Shape{3, 4, 5}, 0, 4), Scalar(axis)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, true},
                     .dtypes = all, .reference = ref(axis)});
  }
  struct Spec {
    std::string name;
    Shape shape;
    int64_t axis;
    DType tidx = DType::kInt32;
    DType out = DType::kInt64;
    bool fed = false;
  };
  const std::vector<Spec> specs = {
      {.name = "int32_output", .shape = {4, 6}, .axis = 1, .out = DType::kInt32},
      {.name = "negative_dim", .shape = {3, 2, 5}, .axis = -1, .tidx = DType::kInt64},
      {.name = "int16_dim", .shape = {5, 3}, .axis = 0, .tidx = DType::kInt16},
      {.name = "vector", .shape = {7}, .axis = 0},
      {.name = "empty_output", .shape = {0, 3}, .axis = 1},
      {.name = "dim_fed", .shape = {3, 4}, .axis = -2, .fed = true},
  };
  for (const Spec& s : specs) {
    cases.push_back({.name = "ArgMax_" + s.name, .op = "ArgMax",
                     .inputs = {Random(s.shape), Scalar(static_cast<double>(s.axis))},
                     .input_dtypes = {DType::kInvalid, s.tidx}, .constant = {false, !s.fed},
                     .attrs = {{"output_type", MakeAttr(s.out)}},
                     .dtypes = kFloats, .reference = ref(s.axis)});
  }
  for (bool fed : {false, true}) {
    cases.push_back({.name = absl::StrCat("ArgMax_dim_out_of_range", fed ? "_fed" : ""),
                     .op = "ArgMax", .inputs = {Random(Shape{2, 3}), Scalar(2)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, !fed},
                     .expect_error = "out of range for rank 2"});
    cases.push_back({.name = absl::StrCat("ArgMax_empty_axis", fed ? "_fed" : ""),
                     .op = "ArgMax", .inputs = {Random(Shape{0, 3}), Scalar(0)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, !fed},
                     .expect_error = "is empty"});
    cases.push_back({.name = absl::StrCat("ArgMax_scalar_input", fed ? "_fed" : ""),
                     .op = "ArgMax", .inputs = {Scalar(1), Scalar(0)},
                     .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, !fed},
                     .expect_error = "rank >= 1"});
  }
  cases.push_back({.name = "ArgMax_vector_dim", .op = "ArgMax",
                   .inputs = {Random(Shape{2, 3}), Axes({0})},
                   .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, true},
                   .expect_error = "must have rank 0"});
  cases.push_back({.name = "ArgMax_float_output_type", .op = "ArgMax",
                   .inputs = {Random(Shape{2, 3}), Scalar(0)},
                   .input_dtypes = {DType::kInvalid, DType::kInt32}, .constant = {false, true},
                   .attrs = {{"output_type", MakeAttr(DType::kFloat)}},
                   .expect_error = "attr 'output_type' = float is not one of"});
}

}  // namespace

std::vector<OpCase> ReductionOpCases() {
  std::vector<OpCase> cases;
  AddReductionCases(cases, "Sum", Kind::kSum);
  AddReductionCases(cases, "Mean", Kind::kMean);
  AddReductionCases(cases, "Max", Kind::kMax);
  AddReductionCases(cases, "Min", Kind::kMin);
  AddEmptyIntExtremaCases(cases);
  AddArgMaxCases(cases);
  return cases;
}

}  // namespace gradserve::testing
