// Symbol-to-symbol automatic differentiation, as TensorFlow does it: every
// differentiable op has a gradient function that *adds nodes to the graph*
// computing the gradients of its inputs from the gradients of its outputs.
// AddGradients walks back from ys to xs calling them, so gradients are ordinary
// graph nodes: placed, run, saved, drawn and differentiated again like any other.
//
// autodiff builds graphs; it never runs them (it depends on graph/ only).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/builder/scope.h"

namespace gradserve {

// What a gradient function sees for one node `op` being differentiated.
struct GradContext {
  const Scope& scope;               // where to add gradient nodes
  const Node& op;                   // the forward node
  std::vector<Output> inputs;       // the forward node's inputs
  std::vector<Output> outputs;      // the forward node's outputs
  std::vector<Output> grad_outputs; // dL/d(output i); zeros where no gradient flows
  std::vector<bool> needs_grad;     // which inputs want a gradient
};

// Fills `grad_inputs` (one entry per input; an empty Output = no gradient). The
// function's first line is a comment with the math.
using GradFn = std::function<absl::Status(const GradContext& ctx, std::vector<Output>* grad_inputs)>;

// Thread safety: built once, then read concurrently.
class GradientRegistry {
 public:
  absl::Status Register(const std::string& op, GradFn fn);
  // Ops whose outputs carry no gradient to their inputs (comparisons, ArgMax,
  // Shape, StopGradient, integer-only ops).
  absl::Status RegisterNotDifferentiable(const std::string& op);

  // nullptr and *not_differentiable = true for ops marked not differentiable;
  // nullptr and false for ops nobody registered.
  const GradFn* Find(absl::string_view op, bool* not_differentiable) const;
  bool Knows(absl::string_view op) const;

  // Every family's gradients (autodiff/gradients/<family>_grad.cc), built on first use.
  static const GradientRegistry& Global();

 private:
  std::map<std::string, GradFn, std::less<>> fns_;
  std::map<std::string, bool, std::less<>> not_differentiable_;
};

absl::Status RegisterAllGradients(GradientRegistry& registry);
absl::Status RegisterMathGradients(GradientRegistry& registry);
absl::Status RegisterReductionGradients(GradientRegistry& registry);
absl::Status RegisterNnGradients(GradientRegistry& registry);
absl::Status RegisterArrayGradients(GradientRegistry& registry);
absl::Status RegisterStateGradients(GradientRegistry& registry);

// Adds nodes computing d(sum of ys)/d(x) for each x in `xs`, seeding each y with
// `grad_ys[i]` (default: ones of y's shape). Gradients fanning into one tensor
// are summed (AddN). Paths through StopGradient, not-differentiable ops and
// non-floating dtypes carry no gradient. The result has one entry per x: the
// gradient tensor, or an empty Output when x does not reach any y ("not
// connected"). Errors: InvalidArgument for an empty/foreign tensor or a seed of
// the wrong dtype; Unimplemented naming the op when a node on a path from an x
// to a y has no registered gradient.
absl::StatusOr<std::vector<Output>> AddGradients(const Scope& scope, const std::vector<Output>& ys,
                                                 const std::vector<Output>& xs,
                                                 const std::vector<Output>& grad_ys = {});

}  // namespace gradserve
