// Gradient-check cases for the math op family (see grad_check_util.h).
#include <cmath>

#include "absl/strings/str_cat.h"
#include "tests/unit/autodiff/grad_check_util.h"

namespace gradserve::testing {
namespace {

// Values in [lo, hi] with a random sign: away from 0 (Abs's kink, RealDiv's pole).
RefTensor AwayFromZero(const Shape& shape, double lo = 0.2, double hi = 1.0) {
  RefTensor t = Random(shape, lo, hi);
  std::bernoulli_distribution sign(0.5);
  for (double& v : t.v) v = sign(Rng()) ? v : -v;
  return t;
}

// Values on two disjoint grids (k/5 + offset), so that an x and a y never come
// within 0.1 of each other: Maximum and Minimum are checked away from ties.
RefTensor OnGrid(const Shape& shape, double offset) {
  RefTensor t = RandomInt(shape, -5, 5);
  for (double& v : t.v) v = v / 5.0 + offset;
  return t;
}

struct BinaryShapes {
  const char* name;
  Shape x, y;
};
const std::vector<BinaryShapes>& BroadcastShapes() {
  static const std::vector<BinaryShapes> shapes = {
      {"same", Shape{3, 4}, Shape{3, 4}},   {"row", Shape{2, 3}, Shape{3}},
      {"column", Shape{4, 1}, Shape{1, 5}}, {"scalar_x", Shape{}, Shape{2, 3}},
      {"scalar_y", Shape{3, 2}, Shape{}},   {"rank3", Shape{2, 1, 3}, Shape{5, 1}},
  };
  return shapes;
}

void AddBinaryCases(std::vector<GradCase>& cases) {
  struct Spec {
    const char* op;
    std::function<RefTensor(const Shape&)> x, y;
  };
  const auto any = [](const Shape& s) { return Random(s); };
  const std::vector<Spec> specs = {
      {"Add", any, any},
      {"AddV2", any, any},
      {"Sub", any, any},
      {"Mul", any, any},
      {"RealDiv", any, [](const Shape& s) { return AwayFromZero(s); }},
      {"Pow", [](const Shape& s) { return Random(s, 0.5, 1.5); }, any},
      {"Maximum", [](const Shape& s) { return OnGrid(s, 0.05); },
       [](const Shape& s) { return OnGrid(s, 0.15); }},
      {"Minimum", [](const Shape& s) { return OnGrid(s, 0.05); },
       [](const Shape& s) { return OnGrid(s, 0.15); }},
  };
  for (const Spec& spec : specs) {
    for (const BinaryShapes& sh : BroadcastShapes()) {
      cases.push_back({.name = absl::StrCat(spec.op, "_", sh.name),
                       .op = spec.op,
                       .inputs = {spec.x(sh.x), spec.y(sh.y)},
                       .wrt = {0, 1}});
    }
  }
  // Second order: the gradients of Mul and RealDiv depend on the other operand;
  // with broadcasting this also differentiates Sum's gradient.
  for (const char* op : {"Mul", "RealDiv"}) {
    for (const BinaryShapes& sh :
         {BroadcastShapes()[0], BroadcastShapes()[1], BroadcastShapes()[5]}) {
      cases.push_back({.name = absl::StrCat(op, "_", sh.name, "_order2"),
                       .op = op,
                       .inputs = {Random(sh.x), AwayFromZero(sh.y, 0.5, 1.0)},
                       .wrt = {0, 1},
                       .order = 2});
    }
  }
  cases.push_back({.name = "AddN_three",
                   .op = "AddN",
                   .inputs = {Random(Shape{2, 3}), Random(Shape{2, 3}), Random(Shape{2, 3})},
                   .attrs = {{"N", MakeAttr(3)}},
                   .wrt = {0, 1, 2}});
  cases.push_back({.name = "AddN_one",
                   .op = "AddN",
                   .inputs = {Random(Shape{5})},
                   .attrs = {{"N", MakeAttr(1)}},
                   .wrt = {0}});
}

void AddUnaryCases(std::vector<GradCase>& cases) {
  struct Spec {
    const char* op;
    std::function<RefTensor(const Shape&)> x;
    bool order2;  // the gradient depends on x smoothly
  };
  const std::vector<Spec> specs = {
      {"Neg", [](const Shape& s) { return Random(s); }, false},
      {"Abs", [](const Shape& s) { return AwayFromZero(s, 0.1, 1.0); }, false},
      {"Exp", [](const Shape& s) { return Random(s); }, true},
      {"Log", [](const Shape& s) { return Random(s, 0.5, 2.0); }, true},
      {"Sqrt", [](const Shape& s) { return Random(s, 0.5, 2.0); }, true},
      {"Rsqrt", [](const Shape& s) { return Random(s, 0.5, 2.0); }, true},
      {"Square", [](const Shape& s) { return Random(s); }, true},
  };
  for (const Spec& spec : specs) {
    cases.push_back({.name = absl::StrCat(spec.op, "_matrix"),
                     .op = spec.op,
                     .inputs = {spec.x(Shape{3, 5})},
                     .wrt = {0}});
    cases.push_back({.name = absl::StrCat(spec.op, "_scalar"),
                     .op = spec.op,
                     .inputs = {spec.x(Shape{})},
                     .wrt = {0}});
    if (spec.order2) {
      cases.push_back({.name = absl::StrCat(spec.op, "_order2"),
                       .op = spec.op,
                       .inputs = {spec.x(Shape{2, 3})},
                       .wrt = {0},
                       .order = 2});
    }
  }
  cases.push_back({.name = "Cast_double_to_double",
                   .op = "Cast",
                   .inputs = {Random(Shape{2, 3})},
                   .attrs = {{"DstT", MakeAttr(DType::kDouble)}},
                   .wrt = {0}});
}

void AddMatMulCases(std::vector<GradCase>& cases) {
  const int64_t m = 3, k = 4, n = 5;
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      const Shape a = ta ? Shape{k, m} : Shape{m, k};
      const Shape b = tb ? Shape{n, k} : Shape{k, n};
      const AttrMap mm_attrs = {{"transpose_a", MakeAttr(ta)}, {"transpose_b", MakeAttr(tb)}};
      for (int order : {1, 2}) {
        cases.push_back({.name = absl::StrCat("MatMul_ta", ta, "_tb", tb, "_order", order),
                         .op = "MatMul",
                         .inputs = {Random(a), Random(b)},
                         .attrs = mm_attrs,
                         .wrt = {0, 1},
                         .order = order});
      }
      // Batch dims broadcast: x has a size-1 batch dim, y fewer batch dims.
      const Shape x = ta ? Shape{2, 1, k, m} : Shape{2, 1, m, k};
      const Shape y = tb ? Shape{3, n, k} : Shape{3, k, n};
      const AttrMap bmm_attrs = {{"adj_x", MakeAttr(ta)}, {"adj_y", MakeAttr(tb)}};
      cases.push_back({.name = absl::StrCat("BatchMatMulV2_adjx", ta, "_adjy", tb),
                       .op = "BatchMatMulV2",
                       .inputs = {Random(x), Random(y)},
                       .attrs = bmm_attrs,
                       .wrt = {0, 1}});
    }
  }
  cases.push_back({.name = "BatchMatMulV2_matrix_x",
                   .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{3, 4}), Random(Shape{2, 4, 5})},
                   .wrt = {0, 1}});
  cases.push_back({.name = "BatchMatMulV2_same_batch_order2",
                   .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 3, 4}), Random(Shape{2, 4, 3})},
                   .wrt = {0, 1},
                   .order = 2});
  cases.push_back({.name = "BatchMatMulV2_broadcast_order2",
                   .op = "BatchMatMulV2",
                   .inputs = {Random(Shape{2, 1, 2, 3}), Random(Shape{3, 4, 3})},
                   .attrs = {{"adj_y", MakeAttr(true)}},
                   .wrt = {0, 1},
                   .order = 2});
}

}  // namespace

std::vector<GradCase> MathGradCases() {
  std::vector<GradCase> cases;
  AddBinaryCases(cases);
  AddUnaryCases(cases);
  AddMatMulCases(cases);
  return cases;
}

}  // namespace gradserve::testing
