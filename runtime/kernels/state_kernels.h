// The state kernels that are the same on every device, and the pieces the
// device-specific ones share. A resource handle is host metadata (the address
// of a Var, runtime/resource.h), so VarHandleOp and VarIsInitializedOp read and
// write only host memory and NoOp touches nothing: one class each serves the
// CPU (runtime/kernels/cpu/state_ops.cc, array_ops.cc) and CUDA
// (runtime/kernels/cuda/state_ops.cc), which registers their handle and
// result as host-memory arguments. Their outputs are allocated in host memory
// (HostAllocator), which is also the CPU device's memory.
//
// Devices that keep variables in their own memory (a GPU, the test
// accelerators) share EnsureOnDevice, DeviceReadVariableOpKernel and
// DeviceConstKernel, written against Device alone.
//
// Defined in runtime/kernels/cpu/state_ops.cc. Kernels are cheap (IsExpensive
// false) and thread-safe (Compute is const; Var and ResourceMgr lock).
#pragma once

#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
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

// Moves `var`'s value into `device`'s memory when it is in host memory (a
// variable restored from a checkpoint or assigned on the CPU), under the
// variable's lock, so a kernel may then update it in place with Var::Update.
// Variables live on the device that uses them; after the first use this is a
// check only. Nothing for an unset variable. FailedPrecondition while the
// thread captures a device graph (Note [Device graphs]: the copy's memory
// would be the graph's).
absl::Status EnsureOnDevice(Var& var, Device& device);

// ReadVariableOp on a device with memory of its own (handle input in host
// memory): the variable, moved there first (EnsureOnDevice), as a snapshot of
// its own buffer, no copy. FailedPrecondition when unset, or when a host
// value was assigned concurrently after the move.
class DeviceReadVariableOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override;
};

// Const on a device with memory of its own: copied there on the first run,
// then shared by every run (outputs are never written in place while
// shared). FailedPrecondition for a first run in a device graph capture.
class DeviceConstKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override;

 private:
  mutable absl::Mutex mu_;
  mutable Tensor on_device_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gradserve
