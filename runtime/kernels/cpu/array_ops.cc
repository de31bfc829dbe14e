// CPU kernels for array ops (graph/ops/array_ops.cc).
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"

namespace gradserve {
namespace {

class ConstKernel final : public OpKernel {
 public:
  explicit ConstKernel(const Node& node) : OpKernel(node), value_(*node.constant_value()) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    ctx.set_output(0, value_);
    return absl::OkStatus();
  }

 private:
  Tensor value_;  // shared by every run; consumers never write into it
};

class PlaceholderKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext&) const override {
    return absl::InvalidArgumentError(
        absl::StrCat("placeholder '", name(), "' must be fed a value"));
  }
};

// Identity, StopGradient, PlaceholderWithDefault: output 0 = input 0 (shared).
class ForwardKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    ctx.set_output(0, ctx.input(0));
    return absl::OkStatus();
  }
};

class NoOpKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext&) const override { return absl::OkStatus(); }
};

}  // namespace

absl::Status RegisterCpuArrayKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterUntyped<ConstKernel>(r, "Const"));
  GS_RETURN_IF_ERROR(RegisterUntyped<PlaceholderKernel>(r, "Placeholder"));
  for (const char* op : {"Identity", "StopGradient", "PlaceholderWithDefault"}) {
    GS_RETURN_IF_ERROR(RegisterUntyped<ForwardKernel>(r, op));
  }
  GS_RETURN_IF_ERROR(RegisterUntyped<NoOpKernel>(r, "NoOp"));
  return absl::OkStatus();
}

}  // namespace gradserve
