// CPU kernels for the optimizer ops (graph/ops/optimizer_ops.cc), with
// TensorFlow's formulas (tensorflow/core/kernels/training_ops.cc).
//
// Note [Optimizer locking]: a step writes its variable and slot variables
// (accum, m, v) together, so it holds all their locks for the whole step: a
// reader or another step never sees a half-applied update. The locks are taken in
// address order, the same order in every kernel, so steps sharing variables
// cannot deadlock; Var's mutex is private, so they are nested Var::Update calls
// (which also un-share each buffer first: copy-on-write). use_locking=false is
// accepted for TensorFlow graphs but changes nothing: updates always lock. The
// locking is UpdateLocked (runtime/kernels/optimizer_util.h), which the CUDA
// kernels share.
#include <array>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/optimizer_util.h"

namespace gradserve {

namespace {

// Resolves the resource inputs 0..N-1 (called `names` in messages), checks that
// each holds T, is initialized and is distinct, then runs `step` on their values
// with all of them locked (Note [Optimizer locking]).
template <typename T, size_t N>
absl::Status UpdateVariables(const OpKernelContext& ctx, const Node& node,
                             const std::array<const char*, N>& names, const VarStepFn<N>& step) {
  GS_ASSIGN_OR_RETURN(const auto vars, ResolveVariables(ctx, node, names, DTypeOf<T>::value));
  return UpdateLocked(vars, step);
}

// The value of scalar input i; InvalidArgument unless it has rank 0.
template <typename T>
absl::StatusOr<T> ScalarInput(const OpKernelContext& ctx, int i, const char* name) {
  GS_RETURN_IF_ERROR(CheckScalarInput(ctx.input(i), name));
  return ctx.input(i).scalar<T>();
}

// var -= alpha * delta
template <typename T>
class ApplyGradientDescentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(const T alpha, ScalarInput<T>(ctx, 1, "alpha"));
    const Tensor& delta = ctx.input(2);
    return UpdateVariables<T, 1>(ctx, node(), {"var"}, [&](const VarValues<1>& v) -> absl::Status {
      Tensor& var = *v[0];
      GS_RETURN_IF_ERROR(CheckSameShape("var", var, "delta", delta));
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
                                 [&](const VarValues<2>& v) -> absl::Status {
                                   Tensor &var = *v[0], &accum = *v[1];
                                   GS_RETURN_IF_ERROR(CheckSameShape("var", var, "accum", accum));
                                   GS_RETURN_IF_ERROR(CheckSameShape("var", var, "grad", grad));
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
        ctx, node(), {"var", "m", "v"}, [&](const VarValues<3>& slots) -> absl::Status {
          Tensor &var = *slots[0], &m_t = *slots[1], &v_t = *slots[2];
          GS_RETURN_IF_ERROR(CheckSameShape("var", var, "m", m_t));
          GS_RETURN_IF_ERROR(CheckSameShape("var", var, "v", v_t));
          GS_RETURN_IF_ERROR(CheckSameShape("var", var, "grad", grad));
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
