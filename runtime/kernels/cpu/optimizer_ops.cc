// CPU kernels for the optimizer ops (graph/ops/optimizer_ops.cc), with
// TensorFlow's formulas (tensorflow/core/kernels/training_ops.cc).
//
// Note [Optimizer locking]: a step writes its variable and slot variables
// (accum, m, v) together, so it holds all their locks for the whole step: a
// reader or another step never sees a half-applied update. The locks are taken in
// address order, the same order in every kernel, so steps sharing variables
// cannot deadlock; Var's mutex is private, so they are nested Var::Update calls
// (which also un-share each buffer first: copy-on-write). use_locking=false is
// accepted for TensorFlow graphs but changes nothing: updates always lock.
#include <algorithm>
#include <array>
#include <functional>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/resource.h"

namespace gradserve {

// Defined in state_ops.cc: the Var behind a resource handle.
absl::StatusOr<Var*> VarFromHandle(const Tensor& handle);

namespace {

template <size_t N>
using Values = std::array<Tensor*, N>;
template <size_t N>
using StepFn = std::function<absl::Status(const Values<N>&)>;

// Locks vars[order[k]], vars[order[k+1]], ... by nesting Update calls, then runs step.
template <size_t N>
absl::Status LockFrom(const std::array<Var*, N>& vars, const std::array<size_t, N>& order, size_t k,
                      Values<N>& values, const StepFn<N>& step) {
  if (k == N) return step(values);
  const size_t i = order[k];
  return vars[i]->Update([&](Tensor& value) -> absl::Status {
    values[i] = &value;
    return LockFrom(vars, order, k + 1, values, step);
  });
}

// Resolves the resource inputs 0..N-1 (called `names` in messages), checks that
// each holds T, is initialized and is distinct, then runs `step` on their values
// with all of them locked (Note [Optimizer locking]).
template <typename T, size_t N>
absl::Status UpdateVariables(const OpKernelContext& ctx, const Node& node,
                             const std::array<const char*, N>& names, const StepFn<N>& step) {
  std::array<Var*, N> vars;
  for (size_t i = 0; i < N; ++i) {
    GS_ASSIGN_OR_RETURN(vars[i], VarFromHandle(ctx.input(static_cast<int>(i))));
    const std::string& handle = node.input(static_cast<int>(i)).node->name();
    if (vars[i]->dtype() != DTypeOf<T>::value) {
      return absl::InvalidArgumentError(
          absl::StrCat(names[i], " variable '", handle, "' is ", DTypeName(vars[i]->dtype()),
                       ", but the update is ", DTypeName(DTypeOf<T>::value)));
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
  std::array<size_t, N> order;
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(),
            [&](size_t a, size_t b) { return std::less<Var*>()(vars[a], vars[b]); });
  Values<N> values{};
  return LockFrom(vars, order, 0, values, step);
}

// The value of scalar input i; InvalidArgument unless it has rank 0.
template <typename T>
absl::StatusOr<T> ScalarInput(const OpKernelContext& ctx, int i, const char* name) {
  const Tensor& t = ctx.input(i);
  if (t.shape().rank() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(name, " must be a scalar, got shape ", t.shape().DebugString()));
  }
  return t.scalar<T>();
}

absl::Status SameShape(const char* a_name, const Tensor& a, const char* b_name, const Tensor& b) {
  if (a.shape() == b.shape()) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(a_name, " and ", b_name, " must have the same shape: ", a_name, " ",
                   a.shape().DebugString(), ", ", b_name, " ", b.shape().DebugString()));
}

// var -= alpha * delta
template <typename T>
class ApplyGradientDescentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(const T alpha, ScalarInput<T>(ctx, 1, "alpha"));
    const Tensor& delta = ctx.input(2);
    return UpdateVariables<T, 1>(ctx, node(), {"var"}, [&](const Values<1>& v) -> absl::Status {
      Tensor& var = *v[0];
      GS_RETURN_IF_ERROR(SameShape("var", var, "delta", delta));
      var.flat<T>().device(EigenCpu(ctx)) -= delta.flat<T>() * alpha;
      return absl::OkStatus();
    });
  }
};

// accum = accum * momentum + grad;
// var -= lr * accum, or with Nesterov var -= grad * lr + accum * momentum * lr.
template <typename T>
class ApplyMomentumKernel final : public OpKernel {
 public:
  explicit ApplyMomentumKernel(const Node& node)
      : OpKernel(node), use_nesterov_(node.GetAttr<bool>("use_nesterov").value_or(false)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(const T lr, ScalarInput<T>(ctx, 2, "lr"));
    GS_ASSIGN_OR_RETURN(const T momentum, ScalarInput<T>(ctx, 4, "momentum"));
    const Tensor& grad = ctx.input(3);
    return UpdateVariables<T, 2>(ctx, node(), {"var", "accum"},
                                 [&](const Values<2>& v) -> absl::Status {
                                   Tensor &var = *v[0], &accum = *v[1];
                                   GS_RETURN_IF_ERROR(SameShape("var", var, "accum", accum));
                                   GS_RETURN_IF_ERROR(SameShape("var", var, "grad", grad));
                                   const auto& d = EigenCpu(ctx);
                                   auto a = accum.flat<T>();
                                   auto g = grad.flat<T>();
                                   a.device(d) = a * momentum + g;
                                   if (use_nesterov_) {
                                     var.flat<T>().device(d) -= g * lr + a * momentum * lr;
                                   } else {
                                     var.flat<T>().device(d) -= a * lr;
                                   }
                                   return absl::OkStatus();
                                 });
  }

 private:
  const bool use_nesterov_;
};

// lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power);
// m += (grad - m) * (1 - beta1); v += (grad^2 - v) * (1 - beta2);
// var -= lr_t * m / (sqrt(v) + epsilon), or with Nesterov
// var -= lr_t * (m * beta1 + grad * (1 - beta1)) / (sqrt(v) + epsilon).
template <typename T>
class ApplyAdamKernel final : public OpKernel {
 public:
  explicit ApplyAdamKernel(const Node& node)
      : OpKernel(node), use_nesterov_(node.GetAttr<bool>("use_nesterov").value_or(false)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(const T beta1_power, ScalarInput<T>(ctx, 3, "beta1_power"));
    GS_ASSIGN_OR_RETURN(const T beta2_power, ScalarInput<T>(ctx, 4, "beta2_power"));
    GS_ASSIGN_OR_RETURN(const T lr, ScalarInput<T>(ctx, 5, "lr"));
    GS_ASSIGN_OR_RETURN(const T beta1, ScalarInput<T>(ctx, 6, "beta1"));
    GS_ASSIGN_OR_RETURN(const T beta2, ScalarInput<T>(ctx, 7, "beta2"));
    GS_ASSIGN_OR_RETURN(const T epsilon, ScalarInput<T>(ctx, 8, "epsilon"));
    const Tensor& grad = ctx.input(9);
    const T one(1);
    const T lr_t = lr * Eigen::numext::sqrt(one - beta2_power) / (one - beta1_power);
    return UpdateVariables<T, 3>(
        ctx, node(), {"var", "m", "v"}, [&](const Values<3>& slots) -> absl::Status {
          Tensor &var = *slots[0], &m_t = *slots[1], &v_t = *slots[2];
          GS_RETURN_IF_ERROR(SameShape("var", var, "m", m_t));
          GS_RETURN_IF_ERROR(SameShape("var", var, "v", v_t));
          GS_RETURN_IF_ERROR(SameShape("var", var, "grad", grad));
          const auto& d = EigenCpu(ctx);
          auto m = m_t.flat<T>();
          auto v = v_t.flat<T>();
          auto g = grad.flat<T>();
          m.device(d) += (g - m) * (one - beta1);
          v.device(d) += (g.square() - v) * (one - beta2);
          if (use_nesterov_) {
            var.flat<T>().device(d) -=
                ((g * (one - beta1) + m * beta1) * lr_t) / (v.sqrt() + epsilon);
          } else {
            var.flat<T>().device(d) -= (m * lr_t) / (v.sqrt() + epsilon);
          }
          return absl::OkStatus();
        });
  }

 private:
  const bool use_nesterov_;
};

}  // namespace

absl::Status RegisterCpuOptimizerKernels(KernelRegistry& r) {
  using Types = TypeList<float, double, half, bfloat16>;
  GS_RETURN_IF_ERROR(
      RegisterKernelClass<ApplyGradientDescentKernel>(r, "ResourceApplyGradientDescent", Types{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<ApplyMomentumKernel>(r, "ResourceApplyMomentum", Types{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<ApplyAdamKernel>(r, "ResourceApplyAdam", Types{}));
  return absl::OkStatus();
}

}  // namespace gradserve
