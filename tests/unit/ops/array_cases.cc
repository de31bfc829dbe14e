// Conformance cases for the array op family (see op_test_util.h).
#include "graph/attr.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

std::vector<OpCase> ArrayOpCases() {
  std::vector<OpCase> cases;
  const std::vector<DType> all = {DType::kFloat, DType::kDouble, DType::kHalf, DType::kBFloat16,
                                  DType::kInt8,  DType::kUInt8,  DType::kInt32, DType::kInt64,
                                  DType::kBool};
  auto identity = [](const std::vector<RefTensor>& in) { return std::vector<RefTensor>{in[0]}; };
  const RefTensor value = RandomInt(Shape{2, 3}, 0, 1);
  cases.push_back({.name = "Const", .op = "Const",
                   .dtypes = all,
                   .reference = [value](const std::vector<RefTensor>&) {
                     return std::vector<RefTensor>{value};
                   },
                   .typed_attrs = [value](DType t) {
                     return AttrMap{{"value", MakeAttr(ToTensor(value, t))}, {"dtype", MakeAttr(t)}};
                   }});
  for (const char* op : {"Identity", "StopGradient"}) {
    cases.push_back({.name = op, .op = op, .inputs = {RandomInt(Shape{4, 1, 3}, 0, 1)},
                     .dtypes = all, .reference = identity});
  }
  cases.push_back({.name = "PlaceholderWithDefault", .op = "PlaceholderWithDefault",
                   .inputs = {Random(Shape{2, 2})},
                   .attrs = {{"shape", MakeAttr(Shape{-1, 2})}},
                   .reference = identity});
  cases.push_back({.name = "Placeholder_unfed", .op = "Placeholder",
                   .attrs = {{"dtype", MakeAttr(DType::kFloat)}, {"shape", MakeAttr(Shape{2})}},
                   .dtypes = {DType::kFloat},
                   .expect_error = "must be fed"});
  cases.push_back({.name = "NoOp", .op = "NoOp", .dtypes = {DType::kFloat},
                   .reference = [](const std::vector<RefTensor>&) { return std::vector<RefTensor>{}; }});
  return cases;
}

}  // namespace gradserve::testing
