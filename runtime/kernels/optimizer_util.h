// The variable handling and input checks of the optimizer steps
// (ResourceApplyGradientDescent, ResourceApplyMomentum, ResourceApplyAdam),
// shared by the CPU kernels (runtime/kernels/cpu/optimizer_ops.cc) and the
// CUDA kernels (runtime/kernels/cuda/optimizer_ops.cc): resolving the
// variable and slot handles, taking their locks (Note [Optimizer locking] in
// the CPU file), and the checks of the scalars and shapes.
//
// Plain host C++; thread-safe (a step's only shared state is its variables,
// which it touches under their locks). Errors carry the CPU kernels' codes and
// messages, not prefixed with the node's name (the CUDA kernels add it with
// Annotate(status, name())).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <functional>
#include <numeric>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "graph/graph.h"
#include "graph/status.h"
#include "runtime/kernel.h"
#include "runtime/resource.h"

namespace gradserve {

// The values of a step's N variables, in input order, while it holds their locks.
template <size_t N>
using VarValues = std::array<Tensor*, N>;
// A step on locked variable values.
template <size_t N>
using VarStepFn = std::function<absl::Status(const VarValues<N>&)>;

// The Vars behind `node`'s resource inputs 0..N-1 in `ctx` (called `names` in
// messages). Each must hold `dtype` (else InvalidArgument) and be initialized
// (else FailedPrecondition), and no two may be the same variable (else
// InvalidArgument); a handle that names no variable gives VarFromHandle's
// error. Checked in input order, the first failure returned.
template <size_t N>
absl::StatusOr<std::array<Var*, N>> ResolveVariables(const OpKernelContext& ctx, const Node& node,
                                                     const std::array<const char*, N>& names,
                                                     DType dtype) {
  std::array<Var*, N> vars;
  for (size_t i = 0; i < N; ++i) {
    GS_ASSIGN_OR_RETURN(vars[i], VarFromHandle(ctx.input(static_cast<int>(i))));
    const std::string& handle = node.input(static_cast<int>(i)).node->name();
    if (vars[i]->dtype() != dtype) {
      return absl::InvalidArgumentError(absl::StrCat(names[i], " variable '", handle, "' is ",
                                                     DTypeName(vars[i]->dtype()),
                                                     ", but the update is ", DTypeName(dtype)));
    }
    if (!vars[i]->initialized()) {
      return absl::FailedPreconditionError(
          absl::StrCat(names[i], " variable '", handle,
                       "' was used before it was initialized (run its initializer)"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (vars[j] == vars[i]) {
        return absl::InvalidArgumentError(
            absl::StrCat(names[j], " and ", names[i], " are the same variable '", handle, "'"));
      }
    }
  }
  return vars;
}

namespace optimizer_internal {

// Locks vars[order[k]], vars[order[k+1]], ... by nesting Update calls, then runs step.
template <size_t N>
absl::Status LockFrom(const std::array<Var*, N>& vars, const std::array<size_t, N>& order, size_t k,
                      VarValues<N>& values, const VarStepFn<N>& step) {
  if (k == N) return step(values);
  const size_t i = order[k];
  return vars[i]->Update([&](Tensor& value) -> absl::Status {
    values[i] = &value;
    return LockFrom(vars, order, k + 1, values, step);
  });
}

}  // namespace optimizer_internal

// Runs `step` on the values of the distinct `vars` with all their locks held,
// taken in address order (Note [Optimizer locking]); returns step's status.
// Blocks while another step or a reader holds any of them.
template <size_t N>
absl::Status UpdateLocked(const std::array<Var*, N>& vars, const VarStepFn<N>& step) {
  std::array<size_t, N> order;
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return std::less<Var*>()(vars[a], vars[b]); });
  VarValues<N> values{};
  return optimizer_internal::LockFrom(vars, order, 0, values, step);
}

// InvalidArgument unless `t` (the hyperparameter `name`) has rank 0.
inline absl::Status CheckScalarInput(const Tensor& t, const char* name) {
  GS_CHECK_ARG(t.shape().rank() == 0, name, " must be a scalar, got shape ",
               t.shape().DebugString());
  return absl::OkStatus();
}

// InvalidArgument unless `a` and `b` (named `a_name`, `b_name`) have the same shape.
inline absl::Status CheckSameShape(const char* a_name, const Tensor& a, const char* b_name,
                                   const Tensor& b) {
  GS_CHECK_ARG(a.shape() == b.shape(), a_name, " and ", b_name,
               " must have the same shape: ", a_name, " ", a.shape().DebugString(), ", ", b_name,
               " ", b.shape().DebugString());
  return absl::OkStatus();
}

}  // namespace gradserve
