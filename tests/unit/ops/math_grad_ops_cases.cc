// Conformance cases for the math family's backward helper ops
// (BroadcastGradientArgs); MathOpCases() appends them.
#include <algorithm>

#include "absl/strings/str_cat.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

using Ins = std::vector<RefTensor>;

RefTensor Vec(std::vector<double> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Values(Shape{n}, std::move(v));
}

// TensorFlow's rule, written plainly: pad the shorter shape with leading 1s; an
// operand is reduced along every axis where its dim is 1 (so both are where both
// are 1).
Ins BroadcastGradientArgsRef(const Ins& in) {
  const int64_t n0 = in[0].size(), n1 = in[1].size(), n = std::max(n0, n1);
  std::vector<double> r0, r1;
  for (int64_t i = 0; i < n; ++i) {
    const double d0 = i < n - n0 ? 1 : in[0].v[i - (n - n0)];
    const double d1 = i < n - n1 ? 1 : in[1].v[i - (n - n1)];
    if (d0 == 1) r0.push_back(static_cast<double>(i));
    if (d1 == 1) r1.push_back(static_cast<double>(i));
  }
  return {Vec(r0), Vec(r1)};
}

}  // namespace

void AddMathGradOpCases(std::vector<OpCase>& cases) {
  const std::vector<DType> index_types = {DType::kInt32, DType::kInt64};
  struct Spec {
    const char* name;
    std::vector<double> s0, s1;
  };
  const std::vector<Spec> specs = {
      {"same", {2, 3}, {2, 3}},           {"row", {2, 3}, {3}},
      {"column", {4, 1}, {1, 5}},         {"scalar", {}, {3, 2}},
      {"both_one", {1, 3, 1}, {2, 1, 1}}, {"rank_mismatch", {7, 1, 5}, {3, 1}},
      {"empty_dim", {0, 3}, {1, 3}},
  };
  for (const Spec& s : specs) {
    cases.push_back({.name = absl::StrCat("BroadcastGradientArgs_", s.name),
                     .op = "BroadcastGradientArgs",
                     .inputs = {Vec(s.s0), Vec(s.s1)},
                     .dtypes = index_types,
                     .reference = BroadcastGradientArgsRef});
  }
  cases.push_back({.name = "BroadcastGradientArgs_incompatible",
                   .op = "BroadcastGradientArgs",
                   .inputs = {Vec({2, 3}), Vec({4})},
                   .dtypes = index_types,
                   .expect_error = "Incompatible shapes"});
}

}  // namespace gradserve::testing
