// CPU kernels for resource variables (graph/ops/state_ops.cc), and the
// device-neutral ones of runtime/kernels/state_kernels.h.
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/state_kernels.h"

namespace gradserve {

// A resource tensor holds the address of a Var owned by the session's ResourceMgr
// (which outlives every run), so handles stay valid for the whole run.
absl::StatusOr<Var*> VarFromHandle(const Tensor& handle) {
  if (handle.dtype() != DType::kResource || handle.num_elements() != 1) {
    return absl::InvalidArgumentError("expected a scalar resource handle");
  }
  return *handle.data<Var*>();
}

VarHandleOpKernel::VarHandleOpKernel(const Node& node) : OpKernel(node) {
  absl::StatusOr<std::string> shared = node.GetAttr<std::string>("shared_name");
  name_ = shared.ok() && !shared->empty() ? *shared : node.name();
  dtype_ = node.GetAttr<DType>("dtype").value_or(DType::kInvalid);
  shape_ = node.GetAttr<Shape>("shape").value_or(Shape::UnknownRank());
}

absl::Status VarHandleOpKernel::Compute(OpKernelContext& ctx) const {
  GS_ASSIGN_OR_RETURN(Var * var, ctx.resources()->LookupOrCreate(name_, dtype_, shape_));
  Tensor handle(HostAllocator(), DType::kResource, Shape{});
  *handle.data<Var*>() = var;
  ctx.set_output(0, std::move(handle));
  return absl::OkStatus();
}

absl::Status VarIsInitializedOpKernel::Compute(OpKernelContext& ctx) const {
  GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
  Tensor out(HostAllocator(), DType::kBool, Shape{});
  out.scalar<bool>() = var->initialized();
  ctx.set_output(0, std::move(out));
  return absl::OkStatus();
}

absl::Status AssignVariableFromInputs(OpKernelContext& ctx) {
  GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
  const Tensor& value = ctx.input(1);
  return var->Assign(value.RefCountIsOne() ? value : value.DeepCopy());
}

absl::Status UninitializedVariableError(const OpKernel& k) {
  return absl::FailedPreconditionError(absl::StrCat(
      "variable '", k.node().input(0).node->name(),
      "' was read before it was initialized (restore a checkpoint or run its initializer)"));
}

absl::Status EnsureOnDevice(Var& var, Device& device) {
  {
    // Unset: the caller says so. The snapshot is dropped before Update, which
    // would otherwise copy the host value (copy-on-write) before the move.
    absl::StatusOr<Tensor> now = var.Read();
    if (!now.ok() || now->device() == device.name()) return absl::OkStatus();
  }
  // Under the variable's lock, so a concurrent update is neither lost nor raced.
  return var.Update([&device](Tensor& value) -> absl::Status {
    if (value.device() == device.name()) return absl::OkStatus();
    if (device.Capturing()) {
      return absl::FailedPreconditionError(absl::StrCat("the variable is on ", value.device(),
                                                        "; a graph capture cannot move it to ",
                                                        device.name()));
    }
    GS_CHECK_ARG(value.host_accessible(), "the variable is on ", value.device(), ", not on ",
                 device.name(), " or the host");
    GS_ASSIGN_OR_RETURN(value, device.CopyFromHost(value));
    return absl::OkStatus();
  });
}

absl::Status DeviceReadVariableOpKernel::Compute(OpKernelContext& ctx) const {
  GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
  if (!var->initialized()) return UninitializedVariableError(*this);
  GS_RETURN_IF_ERROR(EnsureOnDevice(*var, *ctx.device()));
  GS_ASSIGN_OR_RETURN(Tensor value, var->Read());
  if (value.device() != ctx.device()->name()) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable '", node().input(0).node->name(), "' is on ", value.device(),
                     ", not on ", ctx.device()->name(), " (assigned concurrently)"));
  }
  ctx.set_output(0, std::move(value));
  return absl::OkStatus();
}

absl::Status DeviceConstKernel::Compute(OpKernelContext& ctx) const {
  absl::MutexLock lock(&mu_);
  if (!on_device_.initialized() || on_device_.device() != ctx.device()->name()) {
    const Tensor* value = node().constant_value();
    GS_CHECK_ARG(value != nullptr, name(), ": Const without a value");
    if (ctx.device()->Capturing()) {
      return absl::FailedPreconditionError(
          "the constant is not on the device yet; a graph capture cannot copy it there");
    }
    GS_ASSIGN_OR_RETURN(on_device_, ctx.device()->CopyFromHost(*value));
  }
  ctx.set_output(0, on_device_);
  return absl::OkStatus();
}

namespace {

class ReadVariableOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
    absl::StatusOr<Tensor> value = var->Read();
    if (!value.ok()) return UninitializedVariableError(*this);
    // A variable a GPU kernel moved to its device: read it back.
    GS_ASSIGN_OR_RETURN(Tensor host, value->OnHost());
    ctx.set_output(0, std::move(host));
    return absl::OkStatus();
  }
};

class AssignVariableOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    return AssignVariableFromInputs(ctx);
  }
};

// AssignAdd (sign +1) and AssignSub (sign -1), in place under the variable's lock.
template <typename T, int kSign>
class AssignUpdateKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_ASSIGN_OR_RETURN(Var * var, VarFromHandle(ctx.input(0)));
    const Tensor& delta = ctx.input(1);
    return var->Update([&](Tensor& value) -> absl::Status {
      // A GPU kernel moved the variable to its device: bring it back here
      // (the CPU must not dereference device memory).
      if (!value.host_accessible()) {
        GS_ASSIGN_OR_RETURN(value, value.OnHost());
      }
      if (value.shape() != delta.shape()) {
        return absl::InvalidArgumentError(
            absl::StrCat("update of shape ", delta.shape().DebugString(),
                         " for a variable of shape ", value.shape().DebugString()));
      }
      if constexpr (kSign > 0) {
        value.flat<T>().device(EigenCpu(ctx)) += delta.flat<T>();
      } else {
        value.flat<T>().device(EigenCpu(ctx)) -= delta.flat<T>();
      }
      return absl::OkStatus();
    });
  }
};
template <typename T>
using AssignAddKernel = AssignUpdateKernel<T, 1>;
template <typename T>
using AssignSubKernel = AssignUpdateKernel<T, -1>;

}  // namespace

absl::Status RegisterCpuStateKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterUntyped<VarHandleOpKernel>(r, "VarHandleOp"));
  GS_RETURN_IF_ERROR(RegisterUntyped<ReadVariableOpKernel>(r, "ReadVariableOp"));
  GS_RETURN_IF_ERROR(RegisterUntyped<AssignVariableOpKernel>(r, "AssignVariableOp"));
  GS_RETURN_IF_ERROR(RegisterUntyped<VarIsInitializedOpKernel>(r, "VarIsInitializedOp"));
  using Types = TypeList<float, double, half, bfloat16, int32_t, int64_t>;
  GS_RETURN_IF_ERROR(
      RegisterKernelClass<AssignAddKernel>(r, "AssignAddVariableOp", Types{}, "dtype"));
  GS_RETURN_IF_ERROR(
      RegisterKernelClass<AssignSubKernel>(r, "AssignSubVariableOp", Types{}, "dtype"));
  return absl::OkStatus();
}

}  // namespace gradserve
