// Gradient-check cases for the reduction op family (see grad_check_util.h).
#include "absl/strings/str_cat.h"
#include "tests/unit/autodiff/grad_check_util.h"

namespace gradserve::testing {
namespace {

struct AxisSpec {
  const char* name;
  RefTensor axis;
  DType dtype;
};

std::vector<AxisSpec> Axes() {
  return {
      {"axis1", Values(Shape{1}, {1}), DType::kInt32},
      {"scalar_axis", Scalar(0), DType::kInt32},
      {"negative", Scalar(-1), DType::kInt64},
      {"axes02", Values(Shape{2}, {0, 2}), DType::kInt32},
      {"negative_pair", Values(Shape{2}, {-3, -2}), DType::kInt64},
      {"all", Values(Shape{3}, {0, 1, 2}), DType::kInt32},
      {"none", Values(Shape{0}, {}), DType::kInt32},
  };
}

GradCase Reduction(const std::string& name, const std::string& op, RefTensor x, const AxisSpec& a,
                   bool keep_dims) {
  return {.name = name,
          .op = op,
          .inputs = {std::move(x), a.axis},
          .input_dtypes = {DType::kInvalid, a.dtype},
          .constant = {false, true},
          .attrs = {{"keep_dims", MakeAttr(keep_dims)}},
          .wrt = {0}};
}

}  // namespace

std::vector<GradCase> ReductionGradCases() {
  std::vector<GradCase> cases;
  for (const char* op : {"Sum", "Mean", "Max", "Min"}) {
    for (const AxisSpec& a : Axes()) {
      for (bool keep : {false, true}) {
        // Continuous random values: ties (within the finite-difference step) are
        // vanishingly unlikely for Max and Min.
        cases.push_back(Reduction(absl::StrCat(op, "_", a.name, keep ? "_keep" : ""), op,
                                  Random(Shape{2, 3, 5}), a, keep));
      }
    }
    cases.push_back(Reduction(absl::StrCat(op, "_vector"), op, Random(Shape{7}),
                              {"", Scalar(0), DType::kInt32}, false));
  }
  // Two-way ties: TensorFlow's rule splits the gradient evenly (1/2 each), which
  // is also what central differences see at a two-way tie.
  const RefTensor tied = Values(Shape{2, 3}, {0.5, -0.2, 0.5, -0.7, 0.1, -0.7});
  cases.push_back(Reduction("Max_two_way_tie", "Max", tied, {"", Scalar(1), DType::kInt32}, false));
  cases.push_back(Reduction("Min_two_way_tie", "Min", tied, {"", Scalar(1), DType::kInt32}, true));
  return cases;
}

}  // namespace gradserve::testing
