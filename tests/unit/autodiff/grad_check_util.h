// The gradient-check harness. Each gradient family lists GradCases; one
// parametrized test (gradient_check_test.cc) checks, in float64 on fresh random
// inputs, that the symbolic gradient AddGradients builds equals central finite
// differences:
//   L(x) = sum_k <W_k, out_k(x)> for random W_k (AddGradients seeded with W_k),
//   dL/dx_j ~ (L(x + h e_j) - L(x - h e_j)) / 2h,
// with error |sym - num| / max(|num|, 1) <= tolerance (1e-6 by default). With
// order = 2 it checks the gradient of the gradient the same way (the gradient
// nodes must themselves be differentiable).
//
// Ops without float64 kernels (FusedBatchNormV3) take the float32 path: the case
// gives input_dtypes kFloat and a float64 `reference` of the op. The op and its
// symbolic gradient run in float32; the numeric side differentiates the
// reference, in float64, at the same (float-rounded) inputs and weights, so it is
// exact to ~1e-10 and the tolerance only has to cover float32 rounding in the
// kernels (about 1e-4 relative).
#pragma once

#include <string>
#include <vector>

#include "graph/builder/scope.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

struct GradCase {
  std::string name;  // unique test name
  std::string op;
  std::vector<RefTensor> inputs;
  // Per input: its dtype; kInvalid = float64 (the dtype every check runs in,
  // except on the float32 path).
  std::vector<DType> input_dtypes;
  // Per input: true to add it as a Const node (axes, shapes, indices).
  std::vector<bool> constant;
  AttrMap attrs;
  // The inputs to differentiate with respect to (float64 inputs only, or float32
  // ones on the float32 path).
  std::vector<int> wrt;
  double tolerance = 1e-6;
  int order = 1;  // 2 = also differentiate the gradient (not on the float32 path)
  // Outputs that enter L (default: every output of the dtype checked).
  std::vector<int> outputs;
  // Set: the float32 path; the op's outputs in float64 from the inputs (values
  // as fed, float-rounded). Only the entries listed in `outputs` are read.
  Reference reference;
};

// The cases of each family (tests/unit/autodiff/<family>_grad_cases.cc).
std::vector<GradCase> MathGradCases();
std::vector<GradCase> ReductionGradCases();
std::vector<GradCase> NnGradCases();
std::vector<GradCase> ArrayGradCases();

// Runs the check; OK or an error describing the worst mismatch (input, element,
// symbolic and numeric values).
absl::Status CheckGradient(const GradCase& c);

}  // namespace gradserve::testing
