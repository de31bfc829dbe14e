// What the optimizer step tests feed ResourceApplyGradientDescent,
// ResourceApplyMomentum and ResourceApplyAdam: the variables and scalar inputs
// of each op, five steps' hyperparameters and the starting values. Shared by
// the CPU kernels' test (tests/unit/runtime/optimizer_test.cc, against a float64
// loop) and the CUDA kernels' (tests/unit/cuda/optimizer_test.cc, against the
// CPU); device-neutral, so that both test binaries can include it.
#pragma once

#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "graph/shape.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {

// The variables of `op`: the variable itself, then its slots.
inline std::vector<std::string> OptimizerVariableNames(const std::string& op) {
  if (op == "ResourceApplyMomentum") return {"var", "accum"};
  if (op == "ResourceApplyAdam") return {"var", "m", "v"};
  return {"var"};
}

// The scalar hyperparameters of `op`, by their input names.
inline std::vector<std::string> OptimizerScalarNames(const std::string& op) {
  if (op == "ResourceApplyMomentum") return {"lr", "momentum"};
  if (op == "ResourceApplyAdam") {
    return {"beta1_power", "beta2_power", "lr", "beta1", "beta2", "epsilon"};
  }
  return {"alpha"};
}

// Every op's hyperparameters at step t (1-based), by input name, in float64;
// Adam's bias correction is fed per step as TensorFlow's optimizer does: beta^t.
inline std::map<std::string, double> OptimizerHyperparameters(int t) {
  constexpr double kAlpha = 0.05, kLr = 0.05, kMomentum = 0.9;
  constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEpsilon = 1e-7;
  return {{"alpha", kAlpha},
          {"lr", kLr},
          {"momentum", kMomentum},
          {"beta1", kBeta1},
          {"beta2", kBeta2},
          {"epsilon", kEpsilon},
          {"beta1_power", std::pow(kBeta1, t)},
          {"beta2_power", std::pow(kBeta2, t)}};
}

// Random starting values of `op`'s variables (per OptimizerVariableNames) of
// `shape`: var and accum/m in [-1, 1], v (a second moment) in [0.1, 1].
inline std::vector<RefTensor> OptimizerInitialState(const std::string& op, const Shape& shape) {
  std::vector<RefTensor> state;
  for (const std::string& name : OptimizerVariableNames(op)) {
    state.push_back(name == "v" ? Random(shape, 0.1, 1.0) : Random(shape));
  }
  return state;
}

}  // namespace gradserve::testing
