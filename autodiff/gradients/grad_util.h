// Small graph-building helpers shared by the gradient families.
#pragma once

#include "graph/builder/ops.h"

namespace gradserve::grad_util {

// A scalar constant of a floating dtype (built in float and cast for half/bfloat16).
inline Output ScalarOf(const Scope& s, DType dtype, double v) {
  if (dtype == DType::kDouble) return ops::Const(s, v);
  Output f = ops::Const(s, static_cast<float>(v));
  return dtype == DType::kFloat ? f : ops::Cast(s, f, dtype);
}

}  // namespace gradserve::grad_util
