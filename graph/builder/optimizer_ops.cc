#include "graph/builder/optimizer_ops.h"

namespace gradserve::ops {

Node* ResourceApplyGradientDescent(const Scope& s, Output var, Output alpha, Output delta,
                                   const ResourceApplyGradientDescentAttrs& attrs) {
  return s.AddNode("ResourceApplyGradientDescent", {var, alpha, delta},
                   {{"use_locking", MakeAttr(attrs.use_locking)}});
}

Node* ResourceApplyMomentum(const Scope& s, Output var, Output accum, Output lr, Output grad,
                            Output momentum, const ResourceApplyMomentumAttrs& attrs) {
  return s.AddNode("ResourceApplyMomentum", {var, accum, lr, grad, momentum},
                   {{"use_locking", MakeAttr(attrs.use_locking)},
                    {"use_nesterov", MakeAttr(attrs.use_nesterov)}});
}

Node* ResourceApplyAdam(const Scope& s, Output var, Output m, Output v, Output beta1_power,
                        Output beta2_power, Output lr, Output beta1, Output beta2, Output epsilon,
                        Output grad, const ResourceApplyAdamAttrs& attrs) {
  return s.AddNode("ResourceApplyAdam",
                   {var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad},
                   {{"use_locking", MakeAttr(attrs.use_locking)},
                    {"use_nesterov", MakeAttr(attrs.use_nesterov)}});
}

}  // namespace gradserve::ops
