// The CUDA device's optimizer steps (graph/ops/optimizer_ops.cc), float32:
// ResourceApplyGradientDescent, ResourceApplyMomentum and ResourceApplyAdam,
// each one fused kernel (optimizer_kernels.cu). The resource handles are
// host-memory inputs; the hyperparameters and the gradient stay in device
// memory and the kernel reads the scalars itself, so a step never waits for
// the device. Inputs are checked as the CPU kernels check them
// (runtime/kernels/cpu/optimizer_ops.cc), in the same order, with the same
// codes (the shared code of runtime/kernels/optimizer_util.h); the variables
// and slots move to this GPU on first use (EnsureOnDevice) and are then
// updated in place under their locks, taken in address order (Note [Optimizer
// locking] in the CPU file).
#include <array>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/optimizer_kernels.h"
#include "runtime/kernels/optimizer_util.h"
#include "runtime/kernels/state_kernels.h"
#include "runtime/resource.h"

namespace gradserve {
namespace {

// CheckOnDevice, and the handles (inputs 0..num_handles-1) in host memory.
absl::Status CheckPlacement(const OpKernel& k, OpKernelContext& ctx, int num_handles) {
  for (int i = 0; i < num_handles; ++i) {
    GS_CHECK_ARG(ctx.input(i).host_accessible(), k.name(), ": input ", i, " is on ",
                 ctx.input(i).device(), ", not in host memory");
  }
  for (int i = num_handles; i < ctx.num_inputs(); ++i) {
    GS_CHECK_ARG(ctx.input(i).device() == ctx.device()->name(), k.name(), ": input ", i, " is on ",
                 ctx.input(i).device(), ", not on ", ctx.device()->name());
  }
  return absl::OkStatus();
}

// Resolves the resource inputs 0..N-1 (called `names` in messages), checks
// that each holds float32, is initialized and is distinct (as the CPU does),
// moves each to this GPU, then runs `step` on their values with all of them
// locked and on the GPU.
template <size_t N>
absl::Status UpdateVariables(const OpKernel& k, OpKernelContext& ctx,
                             const std::array<const char*, N>& names, const VarStepFn<N>& step) {
  absl::StatusOr<std::array<Var*, N>> resolved =
      ResolveVariables(ctx, k.node(), names, DType::kFloat);
  if (!resolved.ok()) return Annotate(resolved.status(), k.name());
  const std::array<Var*, N>& vars = *resolved;
  CudaDevice& gpu = Gpu(ctx);
  for (Var* var : vars) {
    absl::Status moved = EnsureOnDevice(*var, gpu);
    if (!moved.ok()) return Annotate(moved, k.name());
  }
  const VarStepFn<N> checked = [&](const VarValues<N>& v) -> absl::Status {
    for (size_t i = 0; i < N; ++i) {
      // Only if a host value was assigned between EnsureOnDevice and the locks.
      if (v[i]->device() != gpu.name()) {
        return absl::FailedPreconditionError(
            absl::StrCat(k.name(), ": ", names[i], " variable '",
                         k.node().input(static_cast<int>(i)).node->name(), "' is on ",
                         v[i]->device(), ", not on ", gpu.name(), " (assigned concurrently)"));
      }
    }
    return step(v);
  };
  return UpdateLocked(vars, checked);
}

// InvalidArgument unless input i has rank 0 (its value stays on the device).
absl::Status CheckScalar(const OpKernel& k, const OpKernelContext& ctx, int i, const char* name) {
  return Annotate(CheckScalarInput(ctx.input(i), name), k.name());
}

absl::Status SameShape(const OpKernel& k, const char* a_name, const Tensor& a, const char* b_name,
                       const Tensor& b) {
  return Annotate(CheckSameShape(a_name, a, b_name, b), k.name());
}

const float* In(const OpKernelContext& ctx, int i) { return ctx.input(i).data<float>(); }

// (var, alpha, delta): var -= alpha * delta.
class ApplyGradientDescentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckPlacement(*this, ctx, 1));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 1, "alpha"));
    const Tensor& delta = ctx.input(2);
    return UpdateVariables<1>(*this, ctx, {"var"}, [&](const VarValues<1>& v) -> absl::Status {
      Tensor& var = *v[0];
      GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "delta", delta));
      return LaunchStatus(*this, cuda::LaunchApplyGradientDescent(
                                     var.data<float>(), In(ctx, 1), delta.data<float>(),
                                     var.num_elements(), Gpu(ctx).stream()));
    });
  }
};

// (var, accum, lr, grad, momentum), use_nesterov.
class ApplyMomentumKernel final : public OpKernel {
 public:
  explicit ApplyMomentumKernel(const Node& node)
      : OpKernel(node), use_nesterov_(node.GetAttr<bool>("use_nesterov").value_or(false)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckPlacement(*this, ctx, 2));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 2, "lr"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 4, "momentum"));
    const Tensor& grad = ctx.input(3);
    return UpdateVariables<2>(
        *this, ctx, {"var", "accum"}, [&](const VarValues<2>& v) -> absl::Status {
          Tensor &var = *v[0], &accum = *v[1];
          GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "accum", accum));
          GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "grad", grad));
          return LaunchStatus(
              *this, cuda::LaunchApplyMomentum(var.data<float>(), accum.data<float>(), In(ctx, 2),
                                               grad.data<float>(), In(ctx, 4), use_nesterov_,
                                               var.num_elements(), Gpu(ctx).stream()));
        });
  }

 private:
  const bool use_nesterov_;
};

// (var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad), use_nesterov.
class ApplyAdamKernel final : public OpKernel {
 public:
  explicit ApplyAdamKernel(const Node& node)
      : OpKernel(node), use_nesterov_(node.GetAttr<bool>("use_nesterov").value_or(false)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckPlacement(*this, ctx, 3));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 3, "beta1_power"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 4, "beta2_power"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 5, "lr"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 6, "beta1"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 7, "beta2"));
    GS_RETURN_IF_ERROR(CheckScalar(*this, ctx, 8, "epsilon"));
    const Tensor& grad = ctx.input(9);
    const cuda::AdamScalars scalars{.beta1_power = In(ctx, 3),
                                    .beta2_power = In(ctx, 4),
                                    .lr = In(ctx, 5),
                                    .beta1 = In(ctx, 6),
                                    .beta2 = In(ctx, 7),
                                    .epsilon = In(ctx, 8)};
    return UpdateVariables<3>(
        *this, ctx, {"var", "m", "v"}, [&](const VarValues<3>& slots) -> absl::Status {
          Tensor &var = *slots[0], &m = *slots[1], &v = *slots[2];
          GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "m", m));
          GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "v", v));
          GS_RETURN_IF_ERROR(SameShape(*this, "var", var, "grad", grad));
          return LaunchStatus(
              *this, cuda::LaunchApplyAdam(var.data<float>(), m.data<float>(), v.data<float>(),
                                           scalars, grad.data<float>(), use_nesterov_,
                                           var.num_elements(), Gpu(ctx).stream()));
        });
  }

 private:
  const bool use_nesterov_;
};

}  // namespace

absl::Status RegisterCudaOptimizerKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterCuda<ApplyGradientDescentKernel>(
      r, "ResourceApplyGradientDescent", {DType::kFloat}, "T", {.inputs = {0}}));
  GS_RETURN_IF_ERROR(RegisterCuda<ApplyMomentumKernel>(r, "ResourceApplyMomentum", {DType::kFloat},
                                                       "T", {.inputs = {0, 1}}));
  GS_RETURN_IF_ERROR(RegisterCuda<ApplyAdamKernel>(r, "ResourceApplyAdam", {DType::kFloat}, "T",
                                                   {.inputs = {0, 1, 2}}));
  return absl::OkStatus();
}

}  // namespace gradserve
