// The array kernels that never touch an element, written once for every
// device: Identity/StopGradient (output 0 = input 0), Reshape, ExpandDims and
// Squeeze (input 0's buffer under a new shape) and Shape (input 0's shape, in
// host memory). Index-like inputs are read in host memory (array_util.h).
//
// Note [Device-neutral metadata kernels]: what differs between devices is only
// where the inputs may be, so each kernel's last template argument is a
// Placement policy that checks it first:
//   static absl::Status Check(const OpKernel&, OpKernelContext&,
//                             std::initializer_list<int> host_inputs);
// `host_inputs` are the inputs the kernel reads on the host (its registration's
// HostMemory); every other input must be on the kernel's device. On the CPU
// every tensor is in host memory: AnyPlacement checks nothing. The CUDA
// policy is in runtime/kernels/cuda/array_ops.cc. Errors and their codes are
// therefore the same on every device.
//
// Kernels are cheap (IsExpensive false) and thread-safe (Compute is const).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernel.h"
#include "runtime/kernels/array_util.h"

namespace gradserve {

// The CPU's Placement: every tensor it sees is in host memory.
struct AnyPlacement {
  static absl::Status Check(const OpKernel&, OpKernelContext&, std::initializer_list<int>) {
    return absl::OkStatus();
  }
};

// Identity and StopGradient (and PlaceholderWithDefault on the CPU): output 0 =
// input 0 (shared). With `host_input`, input 0 is in host memory (a device's
// int32 kernel, where int32 shape arithmetic lives).
template <typename Placement>
class ForwardKernel final : public OpKernel {
 public:
  explicit ForwardKernel(const Node& node, bool host_input = false)
      : OpKernel(node), host_input_(host_input) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(host_input_ ? Placement::Check(*this, ctx, {0})
                                   : Placement::Check(*this, ctx, {}));
    ctx.set_output(0, ctx.input(0));
    return absl::OkStatus();
  }

 private:
  bool host_input_;
};

// Reshape(tensor, shape): `shape` (host) may hold one -1.
template <typename Placement>
class ReshapeKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Placement::Check(*this, ctx, {1}));
    const Tensor& sizes = ctx.input(1);
    return Relabel(ctx, array_shape::Reshape(ctx.input(0).shape(), sizes.shape(), ReadInts(sizes)));
  }
};

// ExpandDims(input, dim): `dim` (host) holds one axis.
template <typename Placement>
class ExpandDimsKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Placement::Check(*this, ctx, {1}));
    const Tensor& dim = ctx.input(1);
    return Relabel(ctx, array_shape::ExpandDims(ctx.input(0).shape(), dim.shape(), ReadInts(dim)));
  }
};

// Squeeze(input; attr squeeze_dims).
template <typename Placement>
class SqueezeKernel final : public OpKernel {
 public:
  explicit SqueezeKernel(const Node& node)
      : OpKernel(node),
        dims_(node.GetAttr<std::vector<int64_t>>("squeeze_dims").value_or(std::vector<int64_t>{})) {
  }
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Placement::Check(*this, ctx, {}));
    return Relabel(ctx, array_shape::Squeeze(ctx.input(0).shape(), dims_));
  }

 private:
  std::vector<int64_t> dims_;
};

// Shape(input; attr out_type): reads only its input's shape; writes its output
// in host memory. InvalidArgument when a dimension does not fit int32 output.
template <typename Placement>
class ShapeKernel final : public OpKernel {
 public:
  explicit ShapeKernel(const Node& node)
      : OpKernel(node), out_type_(node.GetAttr<DType>("out_type").value_or(DType::kInt32)) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Placement::Check(*this, ctx, {}));
    const Shape& in = ctx.input(0).shape();
    Tensor out(HostAllocator(), out_type_, Shape{in.rank()});
    for (int i = 0; i < in.rank(); ++i) {
      if (out_type_ == DType::kInt64) {
        out.data<int64_t>()[i] = in.dim(i);
        continue;
      }
      if (in.dim(i) > INT32_MAX) {
        return absl::InvalidArgumentError(
            absl::StrCat("Shape output type is 32-bit but dim ", i, " is ", in.dim(i)));
      }
      out.data<int32_t>()[i] = static_cast<int32_t>(in.dim(i));
    }
    ctx.set_output(0, std::move(out));
    return absl::OkStatus();
  }

 private:
  DType out_type_;
};

}  // namespace gradserve
