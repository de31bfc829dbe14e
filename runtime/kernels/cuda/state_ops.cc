// The CUDA device's variable and constant kernels. Variables live on the
// device that uses them: a float variable read or updated by a GPU kernel
// moves there on first use (EnsureOnDevice) and stays; its handle is host
// metadata (VarHandleOp's output and every handle input are host memory), so
// VarHandleOp, VarIsInitializedOp and NoOp are the CPU's device-neutral
// kernels (runtime/kernels/state_kernels.h), and so are ReadVariableOp and
// Const (DeviceReadVariableOpKernel, DeviceConstKernel).
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/state_kernels.h"
#include "runtime/kernels/state_kernels.h"

namespace gradserve {

namespace {

// The handle input's Var, moved to this GPU; FailedPrecondition when unset.
// The move is made under the variable's lock, which is then released: a host
// value assigned concurrently (a CPU AssignVariableOp) may replace it before
// the caller reads or updates it, so the caller checks OnThisGpu again.
absl::StatusOr<Var*> DeviceVar(const OpKernel& k, OpKernelContext& ctx) {
  GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
  if (!var->initialized()) return UninitializedVariableError(k);
  GS_RETURN_IF_ERROR(EnsureOnDevice(*var, Gpu(ctx)));
  return var;
}

// FailedPrecondition unless `value` (of the handle input's variable) is in
// this GPU's memory; see DeviceVar.
absl::Status OnThisGpu(const OpKernel& k, OpKernelContext& ctx, const Tensor& value) {
  if (value.device() == ctx.device()->name()) return absl::OkStatus();
  return absl::FailedPreconditionError(
      absl::StrCat("variable '", k.node().input(0).node->name(), "' is on ", value.device(),
                   ", not on ", ctx.device()->name(), " (assigned concurrently)"));
}

class AssignVariableOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {0}));
    return AssignVariableFromInputs(ctx);
  }
};

// AssignAddVariableOp (sign +1) and AssignSubVariableOp (-1), in place under
// the variable's lock.
class AccumulateKernel final : public OpKernel {
 public:
  AccumulateKernel(const Node& node, float sign) : OpKernel(node), sign_(sign) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {0}));
    GS_ASSIGN_OR_RETURN(Var * var, DeviceVar(*this, ctx));
    const Tensor& delta = ctx.input(1);
    cudaStream_t stream = Gpu(ctx).stream();
    return var->Update([&](Tensor& value) -> absl::Status {
      // A host pointer here would make the kernel fault (and poison the context).
      GS_RETURN_IF_ERROR(OnThisGpu(*this, ctx, value));
      GS_CHECK_ARG(value.shape() == delta.shape(), "update of shape ", delta.shape().DebugString(),
                   " for a variable of shape ", value.shape().DebugString());
      return LaunchStatus(*this, cuda::LaunchAccumulate(value.data<float>(), delta.data<float>(),
                                                        value.num_elements(), sign_, stream));
    });
  }

 private:
  float sign_;
};

}  // namespace

absl::Status RegisterCudaStateKernels(KernelRegistry& r) {
  const HostMemory handle{.inputs = {0}};
  GS_RETURN_IF_ERROR(RegisterCuda<VarHandleOpKernel>(r, "VarHandleOp", {DType::kFloat}, "dtype",
                                                     {.outputs = {0}}));
  GS_RETURN_IF_ERROR(RegisterCuda<DeviceReadVariableOpKernel>(r, "ReadVariableOp", {DType::kFloat},
                                                              "dtype", handle));
  GS_RETURN_IF_ERROR(RegisterCuda<AssignVariableOpKernel>(r, "AssignVariableOp", {DType::kFloat},
                                                          "dtype", handle));
  GS_RETURN_IF_ERROR(RegisterCuda<AccumulateKernel>(r, "AssignAddVariableOp", {DType::kFloat},
                                                    "dtype", handle, 1.f));
  GS_RETURN_IF_ERROR(RegisterCuda<AccumulateKernel>(r, "AssignSubVariableOp", {DType::kFloat},
                                                    "dtype", handle, -1.f));
  GS_RETURN_IF_ERROR(RegisterCuda<VarIsInitializedOpKernel>(r, "VarIsInitializedOp", {}, "",
                                                            {.inputs = {0}, .outputs = {0}}));
  GS_RETURN_IF_ERROR(RegisterCuda<DeviceConstKernel>(r, "Const", {DType::kFloat}, "dtype", {}));
  return RegisterUntyped<NoOpKernel>(r, "NoOp", kDeviceCuda);
}

}  // namespace gradserve
