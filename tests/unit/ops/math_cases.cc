// Conformance cases for the math op family (see op_test_util.h).
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

RefTensor MatMulRef(const RefTensor& a, const RefTensor& b, bool ta, bool tb) {
  const int64_t m = a.dim(ta ? 1 : 0), k = a.dim(ta ? 0 : 1), n = b.dim(tb ? 0 : 1);
  RefTensor c{Shape{m, n}, std::vector<double>(m * n, 0.0)};
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double acc = 0;
      for (int64_t p = 0; p < k; ++p) {
        const double av = ta ? a.v[p * m + i] : a.v[i * k + p];
        const double bv = tb ? b.v[j * k + p] : b.v[p * n + j];
        acc += av * bv;
      }
      c.v[i * n + j] = acc;
    }
  return c;
}

}  // namespace

std::vector<OpCase> MathOpCases() {
  std::vector<OpCase> cases;
  const std::vector<DType> all_numeric = {DType::kFloat, DType::kDouble, DType::kHalf,
                                          DType::kBFloat16, DType::kInt32, DType::kInt64};
  auto add = [](const std::vector<RefTensor>& in) {
    return std::vector<RefTensor>{Broadcast2(in[0], in[1], [](double a, double b) { return a + b; })};
  };
  for (const char* op : {"Add", "AddV2"}) {
    cases.push_back({.name = std::string(op) + "_same_shape",
                     .op = op,
                     .inputs = {RandomInt(Shape{3, 5}, -50, 50), RandomInt(Shape{3, 5}, -50, 50)},
                     .dtypes = all_numeric,
                     .reference = add});
    cases.push_back({.name = std::string(op) + "_broadcast",
                     .op = op,
                     .inputs = {Random(Shape{2, 1, 4}), Random(Shape{3, 1})},
                     .reference = add});
  }
  cases.push_back({.name = "AddV2_scalar", .op = "AddV2",
                   .inputs = {Random(Shape{7}), Scalar(0.25)}, .reference = add});
  cases.push_back({.name = "AddV2_empty", .op = "AddV2",
                   .inputs = {Random(Shape{0, 3}), Random(Shape{3})}, .reference = add});
  cases.push_back({.name = "AddV2_incompatible", .op = "AddV2",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{4})},
                   .reference = add, .expect_error = "cannot be broadcast"});

  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const int64_t m = 5, k = 7, n = 3;
      cases.push_back({
          .name = absl::StrCat("MatMul_ta", ta, "_tb", tb),
          .op = "MatMul",
          .inputs = {Random(ta ? Shape{k, m} : Shape{m, k}), Random(tb ? Shape{n, k} : Shape{k, n})},
          .attrs = {{"transpose_a", MakeAttr(ta)}, {"transpose_b", MakeAttr(tb)}},
          .dtypes = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16},
          .reference = [ta, tb](const std::vector<RefTensor>& in) {
            return std::vector<RefTensor>{MatMulRef(in[0], in[1], ta, tb)};
          },
          .tolerance = 0,
      });
    }
  }
  cases.push_back({.name = "MatMul_int", .op = "MatMul",
                   .inputs = {RandomInt(Shape{4, 6}, -9, 9), RandomInt(Shape{6, 2}, -9, 9)},
                   .dtypes = {DType::kInt32, DType::kInt64},
                   .reference = [](const std::vector<RefTensor>& in) {
                     return std::vector<RefTensor>{MatMulRef(in[0], in[1], false, false)};
                   }});
  cases.push_back({.name = "MatMul_inner_mismatch", .op = "MatMul",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{4, 2})},
                   .reference = nullptr, .expect_error = "inner dimensions differ"});
  return cases;
}

}  // namespace gradserve::testing
