// Variables: named tensors that persist across Session::Run calls, owned by a
// ResourceMgr (one per session). Reads take a snapshot (a Tensor sharing the
// buffer), so a reader never sees a half-written value: writers replace the
// buffer, or update it in place only when no snapshot shares it (copy-on-write).
//
// Thread safety: Var and ResourceMgr are thread-safe.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "graph/tensor.h"

namespace gradserve {

class Var {
 public:
  Var(DType dtype, Shape declared_shape)
      : dtype_(dtype), declared_shape_(std::move(declared_shape)) {}

  DType dtype() const { return dtype_; }
  // The shape the graph declared (may be partial).
  const Shape& declared_shape() const { return declared_shape_; }

  bool initialized() const ABSL_LOCKS_EXCLUDED(mu_);
  // A snapshot of the value; FailedPrecondition if never assigned.
  absl::StatusOr<Tensor> Read() const ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the value (dtype and declared shape are checked).
  absl::Status Assign(Tensor value) ABSL_LOCKS_EXCLUDED(mu_);
  // Runs `update(value)` under the lock on a buffer no reader shares; copies
  // first if a snapshot is outstanding. For in-place updates (AssignAdd, optimizers).
  absl::Status Update(const std::function<absl::Status(Tensor&)>& update)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  const DType dtype_;
  const Shape declared_shape_;
  mutable absl::Mutex mu_;
  Tensor value_ ABSL_GUARDED_BY(mu_);
};

class ResourceMgr {
 public:
  // The variable named `name`, created on first use with `dtype` and `shape`;
  // InvalidArgument when an existing one has another dtype.
  absl::StatusOr<Var*> LookupOrCreate(const std::string& name, DType dtype, const Shape& shape)
      ABSL_LOCKS_EXCLUDED(mu_);
  Var* Lookup(const std::string& name) const ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> Names() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Var>> vars_ ABSL_GUARDED_BY(mu_);
};

// The Var a resource handle tensor (VarHandleOp's output, in host memory)
// points to; InvalidArgument for anything but a scalar resource tensor.
// (Defined with the CPU state kernels.)
absl::StatusOr<Var*> VarFromHandle(const Tensor& handle);

}  // namespace gradserve
