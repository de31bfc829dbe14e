#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {

Output Add(const Scope& s, Output x, Output y);
Output AddV2(const Scope& s, Output x, Output y);

struct MatMulAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
};
Output MatMul(const Scope& s, Output a, Output b, const MatMulAttrs& attrs = {});

}  // namespace gradserve::ops
