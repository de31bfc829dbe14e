// The state kernels that are the same on every device, and the pieces the
// device-specific ones share. A resource handle is host metadata (the address
// of a Var, runtime/resource.h), so VarHandleOp and VarIsInitializedOp read and
// write only host memory and NoOp touches nothing: one class each serves the
// CPU (runtime/kernels/cpu/state_ops.cc, array_ops.cc) and CUDA
// (runtime/kernels/cuda/state_ops.cc), which registers their handle and
// result as host-memory arguments. Their outputs are allocated in host memory
// (HostAllocator), which is also the CPU device's memory.
//
// Defined in runtime/kernels/cpu/state_ops.cc. Kernels are cheap (IsExpensive
// false) and thread-safe (Compute is const; Var and ResourceMgr lock).
#pragma once

#include <string>

#include "absl/status/status.h"
#include "runtime/kernel.h"

namespace gradserve {

// VarHandleOp(attrs shared_name, dtype, shape): a scalar resource handle to
// the session's variable named shared_name (the node's name when empty),
// created on first use. InvalidArgument when it exists with another dtype.
class VarHandleOpKernel final : public OpKernel {
 public:
  explicit VarHandleOpKernel(const Node& node);
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override;

 private:
  std::string name_;
  DType dtype_;
  Shape shape_;
};

// VarIsInitializedOp(handle): a bool scalar, whether the variable has a value.
class VarIsInitializedOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override;
};

// NoOp: nothing (a node for control edges).
class NoOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext&) const override { return absl::OkStatus(); }
};

// AssignVariableOp(handle, value): input 1 becomes the value of input 0's
// variable, copied (on its device) when something else shares its buffer (a
// fetch, a feed or another node). Var::Assign's errors.
absl::Status AssignVariableFromInputs(OpKernelContext& ctx);

// FailedPrecondition naming the variable behind `k`'s handle input 0 (by its
// producer's name), read before it was initialized.
absl::Status UninitializedVariableError(const OpKernel& k);

}  // namespace gradserve
