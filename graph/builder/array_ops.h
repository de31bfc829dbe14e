#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {

Output Const(const Scope& s, const Tensor& value);
template <typename T>
Output Const(const Scope& s, T scalar) { return Const(s, Tensor::Scalar<T>(scalar)); }
template <typename T>
Output Const(const Scope& s, const std::vector<T>& values, const Shape& shape) {
  return Const(s, Tensor::FromVector<T>(values, shape));
}
Output Placeholder(const Scope& s, DType dtype, const Shape& shape = Shape::UnknownRank());
Output PlaceholderWithDefault(const Scope& s, Output input, const Shape& shape);
Output Identity(const Scope& s, Output input);
Output StopGradient(const Scope& s, Output input);
// A node that does nothing; with control inputs it groups targets.
Node* NoOp(const Scope& s);

}  // namespace gradserve::ops
