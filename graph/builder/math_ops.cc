#include "graph/builder/math_ops.h"

namespace gradserve::ops {

Output Add(const Scope& s, Output x, Output y) { return s.AddNode("Add", {x, y}); }
Output AddV2(const Scope& s, Output x, Output y) { return s.AddNode("AddV2", {x, y}); }
Output AddN(const Scope& s, const std::vector<Output>& inputs) {
  return s.AddNode("AddN", inputs, {{"N", MakeAttr(static_cast<int64_t>(inputs.size()))}});
}
Output Sub(const Scope& s, Output x, Output y) { return s.AddNode("Sub", {x, y}); }
Output Mul(const Scope& s, Output x, Output y) { return s.AddNode("Mul", {x, y}); }
Output RealDiv(const Scope& s, Output x, Output y) { return s.AddNode("RealDiv", {x, y}); }
Output Pow(const Scope& s, Output x, Output y) { return s.AddNode("Pow", {x, y}); }
Output Maximum(const Scope& s, Output x, Output y) { return s.AddNode("Maximum", {x, y}); }
Output Minimum(const Scope& s, Output x, Output y) { return s.AddNode("Minimum", {x, y}); }

Output Equal(const Scope& s, Output x, Output y, const EqualAttrs& attrs) {
  return s.AddNode("Equal", {x, y},
                   {{"incompatible_shape_error", MakeAttr(attrs.incompatible_shape_error)}});
}
Output Less(const Scope& s, Output x, Output y) { return s.AddNode("Less", {x, y}); }
Output Greater(const Scope& s, Output x, Output y) { return s.AddNode("Greater", {x, y}); }
Output LogicalAnd(const Scope& s, Output x, Output y) { return s.AddNode("LogicalAnd", {x, y}); }

Output Neg(const Scope& s, Output x) { return s.AddNode("Neg", {x}); }
Output Abs(const Scope& s, Output x) { return s.AddNode("Abs", {x}); }
Output Exp(const Scope& s, Output x) { return s.AddNode("Exp", {x}); }
Output Log(const Scope& s, Output x) { return s.AddNode("Log", {x}); }
Output Sqrt(const Scope& s, Output x) { return s.AddNode("Sqrt", {x}); }
Output Rsqrt(const Scope& s, Output x) { return s.AddNode("Rsqrt", {x}); }
Output Square(const Scope& s, Output x) { return s.AddNode("Square", {x}); }

Output Cast(const Scope& s, Output x, DType dst, const CastAttrs& attrs) {
  return s.AddNode("Cast", {x}, {{"DstT", MakeAttr(dst)}, {"Truncate", MakeAttr(attrs.truncate)}});
}

Output MatMul(const Scope& s, Output a, Output b, const MatMulAttrs& attrs) {
  return s.AddNode(
      "MatMul", {a, b},
      {{"transpose_a", MakeAttr(attrs.transpose_a)}, {"transpose_b", MakeAttr(attrs.transpose_b)}});
}

Output BatchMatMulV2(const Scope& s, Output x, Output y, const BatchMatMulAttrs& attrs) {
  return s.AddNode("BatchMatMulV2", {x, y},
                   {{"adj_x", MakeAttr(attrs.adj_x)}, {"adj_y", MakeAttr(attrs.adj_y)}});
}

Output Sum(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs) {
  return s.AddNode("Sum", {input, axis}, {{"keep_dims", MakeAttr(attrs.keep_dims)}});
}
Output Mean(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs) {
  return s.AddNode("Mean", {input, axis}, {{"keep_dims", MakeAttr(attrs.keep_dims)}});
}
Output Max(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs) {
  return s.AddNode("Max", {input, axis}, {{"keep_dims", MakeAttr(attrs.keep_dims)}});
}
Output Min(const Scope& s, Output input, Output axis, const ReduceAttrs& attrs) {
  return s.AddNode("Min", {input, axis}, {{"keep_dims", MakeAttr(attrs.keep_dims)}});
}

Output ArgMax(const Scope& s, Output input, Output dimension, const ArgMaxAttrs& attrs) {
  return s.AddNode("ArgMax", {input, dimension}, {{"output_type", MakeAttr(attrs.output_type)}});
}

BroadcastGradientArgsOutputs BroadcastGradientArgs(const Scope& s, Output s0, Output s1) {
  Node* n = s.AddNode("BroadcastGradientArgs", {s0, s1});
  if (n == nullptr) return {};
  return {Output(n, 0), Output(n, 1)};
}

}  // namespace gradserve::ops
