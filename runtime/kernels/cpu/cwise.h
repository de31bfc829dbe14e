// Element-wise kernels written once over Eigen tensor expressions, for every
// device.
//
// The math is a functor struct (runtime/kernels/cwise_functors.h):
//   struct AddFn { template <typename A, typename B>
//                  static auto Apply(const A& a, const B& b) { return a + b; } };
// UnaryKernel<T, F> computes F::Apply(x); BinaryKernel<T, F, Out> computes
// F::Apply(x, y) with NumPy broadcasting (Out = bool for comparisons);
// EqualKernel<T> is Equal with its incompatible_shape_error attr.
//
// Note [Device-generic element-wise kernels]: the kernel classes validate,
// allocate (forwarding an input's buffer where they can) and plan the
// broadcast the same way on every device; a Device policy, their last template
// argument, evaluates. CpuCwise (below) runs the cores of cwise_functors.h on
// the CPU's thread pool; CudaCwise (runtime/kernels/cuda/cwise_ops.cc) checks
// that the inputs are on the GPU and launches the same cores, instantiated for
// Eigen::GpuDevice in cwise_kernels.cu. A policy provides:
//   static absl::Status Prepare(const OpKernel&, OpKernelContext&);
//   template <typename T, typename F, typename Out> static absl::Status
//     Unary(k, ctx, const T* x, Out* y, int64_t n),
//     Binary(k, ctx, const T* x, const T* y, Out* z, int64_t n),  // same shapes
//     Broadcast(k, ctx, const T* x, const T* y, Out* z, const BroadcastDims&);
//   template <typename T> static absl::Status Fill(k, ctx, T* out, int64_t n, T value);
// Errors and their codes are therefore the same on every device.
//
// Note [Broadcast collapsing]: before evaluating, adjacent dimensions that
// broadcast the same way are merged (as TensorFlow's BCast does), so any
// broadcast reduces to a small rank: same shapes and scalar operands become flat
// loops, a bias over rows becomes rank 2, and ranks up to 5 are instantiated.
#pragma once

#include <algorithm>
#include <cstdint>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernel.h"
#include "runtime/kernels/cwise_functors.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {

// The CPU device a kernel evaluates on.
const Eigen::ThreadPoolDevice& EigenCpu(const OpKernelContext& ctx);

// Collapses the broadcast of `operands` (at most 3) to `out`, their broadcast
// shape (Note [Broadcast collapsing]); operand k becomes dims->in[k] and
// dims->bcast[k]. False when more than kMaxBroadcastRank dims remain.
bool CollapseBroadcast(std::initializer_list<const Shape*> operands, const Shape& out,
                       BroadcastDims* dims);

// A broadcast of two shapes.
struct BCast {
  bool valid = false;      // the shapes broadcast
  Shape output_shape;      // when valid
  bool collapsed = false;  // dims holds the broadcast (at most kMaxBroadcastRank dims)
  BroadcastDims dims;      // operands 0 (x) and 1 (y)
};
BCast ComputeBCast(const Shape& x, const Shape& y);

// Evaluates on the CPU's thread pool (Note [Device-generic element-wise kernels]).
struct CpuCwise {
  static absl::Status Prepare(const OpKernel&, OpKernelContext&) { return absl::OkStatus(); }

  template <typename T, typename F, typename Out>
  static absl::Status Unary(const OpKernel&, OpKernelContext& ctx, const T* x, Out* y, int64_t n) {
    UnaryEval<Eigen::ThreadPoolDevice, T, F, Out>::Run(EigenCpu(ctx), x, y, n);
    return absl::OkStatus();
  }
  template <typename T, typename F, typename Out>
  static absl::Status Binary(const OpKernel&, OpKernelContext& ctx, const T* x, const T* y, Out* z,
                             int64_t n) {
    BinaryEval<Eigen::ThreadPoolDevice, T, F, Out>::Same(EigenCpu(ctx), x, y, z, n);
    return absl::OkStatus();
  }
  // A one-element operand is read here, on the host, and becomes a constant
  // (a flat loop that vectorizes); a device must not do that.
  template <typename T, typename F, typename Out>
  static absl::Status Broadcast(const OpKernel&, OpKernelContext& ctx, const T* x, const T* y,
                                Out* z, const BroadcastDims& b) {
    using Eval = BinaryEval<Eigen::ThreadPoolDevice, T, F, Out>;
    const auto& d = EigenCpu(ctx);
    if (b.InputSize(1) == 1) {
      Eval::ScalarRight(d, x, y[0], z, b.InputSize(0));
    } else if (b.InputSize(0) == 1) {
      Eval::ScalarLeft(d, x[0], y, z, b.InputSize(1));
    } else {
      Eval::Broadcast(d, x, y, z, b);
    }
    return absl::OkStatus();
  }
  template <typename T>
  static absl::Status Fill(const OpKernel&, OpKernelContext&, T* out, int64_t n, T value) {
    std::fill_n(out, n, value);
    return absl::OkStatus();
  }
};

template <typename T, typename F, typename Out = T, typename Device = CpuCwise>
class UnaryKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Device::Prepare(*this, ctx));
    const Tensor& x = ctx.input(0);
    Tensor* y = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<Out>::value);
    return Device::template Unary<T, F, Out>(*this, ctx, x.data<T>(), y->data<Out>(),
                                             x.num_elements());
  }
};

template <typename T, typename F, typename Out = T, typename Device = CpuCwise>
class BinaryKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(Device::Prepare(*this, ctx));
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    if (x.shape() == y.shape()) {
      Tensor* z = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<Out>::value);
      return Device::template Binary<T, F, Out>(*this, ctx, x.data<T>(), y.data<T>(),
                                                z->data<Out>(), x.num_elements());
    }
    const BCast b = ComputeBCast(x.shape(), y.shape());
    if (!b.valid) {
      return absl::InvalidArgumentError(absl::StrCat(
          "incompatible shapes ", x.shape().DebugString(), " and ", y.shape().DebugString()));
    }
    Tensor* z = ctx.allocate_output(0, b.output_shape, DTypeOf<Out>::value);
    if (z->num_elements() == 0) return absl::OkStatus();
    if (!b.collapsed) {
      return absl::UnimplementedError(
          absl::StrCat("broadcast of ", x.shape().DebugString(), " and ", y.shape().DebugString(),
                       " needs more than ", kMaxBroadcastRank, " collapsed dimensions"));
    }
    return Device::template Broadcast<T, F, Out>(*this, ctx, x.data<T>(), y.data<T>(),
                                                 z->data<Out>(), b.dims);
  }
};

// With incompatible_shape_error=false, shapes that cannot broadcast compare
// unequal: the output is a scalar false (TensorFlow's semantics).
template <typename T, typename Device = CpuCwise>
class EqualKernel final : public OpKernel {
 public:
  explicit EqualKernel(const Node& node)
      : OpKernel(node),
        strict_(node.GetAttr<bool>("incompatible_shape_error").value_or(true)),
        equal_(node) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    if (!strict_ && !BroadcastShapes(ctx.input(0).shape(), ctx.input(1).shape()).ok()) {
      GS_RETURN_IF_ERROR(Device::Prepare(*this, ctx));
      Tensor* z = ctx.allocate_output(0, Shape{}, DType::kBool);
      return Device::Fill(*this, ctx, z->data<bool>(), 1, false);
    }
    return equal_.Compute(ctx);
  }

 private:
  bool strict_;
  BinaryKernel<T, functor::EqualFn, bool, Device> equal_;
};

}  // namespace gradserve
