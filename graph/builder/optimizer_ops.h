// Optimizer steps on resource variables (graph/ops/optimizer_ops.cc). Each
// returns the step node, to run as a target; `var` and the slots (accum, m, v)
// are VarHandleOp outputs, the scalars and grad have the variable's dtype.
#pragma once

#include "graph/builder/scope.h"

namespace gradserve::ops {

// var -= alpha * delta.
struct ResourceApplyGradientDescentAttrs {
  bool use_locking = false;
};
Node* ResourceApplyGradientDescent(const Scope& s, Output var, Output alpha, Output delta,
                                   const ResourceApplyGradientDescentAttrs& attrs = {});

// accum = accum * momentum + grad; var -= lr * accum
// (Nesterov: var -= grad * lr + accum * momentum * lr).
struct ResourceApplyMomentumAttrs {
  bool use_locking = false;
  bool use_nesterov = false;
};
Node* ResourceApplyMomentum(const Scope& s, Output var, Output accum, Output lr, Output grad,
                            Output momentum, const ResourceApplyMomentumAttrs& attrs = {});

// Adam with bias correction from beta1_power = beta1^t and beta2_power = beta2^t.
struct ResourceApplyAdamAttrs {
  bool use_locking = false;
  bool use_nesterov = false;
};
Node* ResourceApplyAdam(const Scope& s, Output var, Output m, Output v, Output beta1_power,
                        Output beta2_power, Output lr, Output beta1, Output beta2, Output epsilon,
                        Output grad, const ResourceApplyAdamAttrs& attrs = {});

}  // namespace gradserve::ops
