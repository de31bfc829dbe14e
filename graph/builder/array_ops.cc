#include "graph/builder/array_ops.h"

namespace gradserve::ops {

Output Const(const Scope& s, const Tensor& value) {
  return s.AddNode("Const", {}, {{"value", MakeAttr(value)}, {"dtype", MakeAttr(value.dtype())}});
}

Output Placeholder(const Scope& s, DType dtype, const Shape& shape) {
  return s.AddNode("Placeholder", {}, {{"dtype", MakeAttr(dtype)}, {"shape", MakeAttr(shape)}});
}

Output PlaceholderWithDefault(const Scope& s, Output input, const Shape& shape) {
  return s.AddNode("PlaceholderWithDefault", {input}, {{"shape", MakeAttr(shape)}});
}

Output Identity(const Scope& s, Output input) { return s.AddNode("Identity", {input}); }
Output StopGradient(const Scope& s, Output input) { return s.AddNode("StopGradient", {input}); }
Node* NoOp(const Scope& s) { return s.AddNode("NoOp", {}); }

}  // namespace gradserve::ops
