#include "graph/builder/math_ops.h"

namespace gradserve::ops {

Output Add(const Scope& s, Output x, Output y) { return s.AddNode("Add", {x, y}); }
Output AddV2(const Scope& s, Output x, Output y) { return s.AddNode("AddV2", {x, y}); }

Output MatMul(const Scope& s, Output a, Output b, const MatMulAttrs& attrs) {
  return s.AddNode("MatMul", {a, b},
                   {{"transpose_a", MakeAttr(attrs.transpose_a)},
                    {"transpose_b", MakeAttr(attrs.transpose_b)}});
}

}  // namespace gradserve::ops
