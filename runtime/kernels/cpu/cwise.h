// Element-wise kernels written once over Eigen tensor expressions.
//
// A functor is a struct with a static `Apply` taking Eigen expressions:
//   struct AddFn { template <typename A, typename B>
//                  static auto Apply(const A& a, const B& b) { return a + b; } };
// UnaryKernel<T, F> computes F::Apply(x); BinaryKernel<T, F, Out> computes
// F::Apply(x, y) with NumPy broadcasting (Out = bool for comparisons).
//
// Note [Broadcast collapsing]: before evaluating, adjacent dimensions that
// broadcast the same way are merged (as TensorFlow's BCast does), so any
// broadcast reduces to a small rank: same shapes and scalar operands become flat
// loops, a bias over rows becomes rank 2, and ranks up to 5 are instantiated.
#pragma once

#include <vector>

#include "absl/strings/str_cat.h"
#include "runtime/kernel.h"
#include "unsupported/Eigen/CXX11/Tensor"

namespace gradserve {

// The CPU device a kernel evaluates on.
const Eigen::ThreadPoolDevice& EigenCpu(const OpKernelContext& ctx);

// A broadcast of two shapes reduced to at most kMaxRank collapsed dims.
struct BCast {
  static constexpr int kMaxRank = 5;
  bool valid = false;
  Shape output_shape;
  std::vector<int64_t> x_reshape, x_bcast, y_reshape, y_bcast;  // collapsed
};
BCast ComputeBCast(const Shape& x, const Shape& y);

template <typename T, typename F, typename Out = T>
class UnaryKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    Tensor* y = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<Out>::value);
    y->flat<Out>().device(EigenCpu(ctx)) = F::Apply(x.flat<T>());
    return absl::OkStatus();
  }
};

template <typename T, typename F, typename Out = T>
class BinaryKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    const auto& d = EigenCpu(ctx);
    if (x.shape() == y.shape()) {
      Tensor* z = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<Out>::value);
      z->flat<Out>().device(d) = F::Apply(x.flat<T>(), y.flat<T>());
      return absl::OkStatus();
    }
    const BCast b = ComputeBCast(x.shape(), y.shape());
    if (!b.valid) {
      return absl::InvalidArgumentError(absl::StrCat("incompatible shapes ",
                                                     x.shape().DebugString(), " and ",
                                                     y.shape().DebugString()));
    }
    Tensor* z = ctx.allocate_output(0, b.output_shape, DTypeOf<Out>::value);
    if (z->num_elements() == 0) return absl::OkStatus();
    if (y.num_elements() == 1) {
      z->flat<Out>().device(d) =
          F::Apply(x.flat<T>(), x.flat<T>().constant(y.data<T>()[0]));
      return absl::OkStatus();
    }
    if (x.num_elements() == 1) {
      z->flat<Out>().device(d) =
          F::Apply(y.flat<T>().constant(x.data<T>()[0]), y.flat<T>());
      return absl::OkStatus();
    }
    switch (b.x_reshape.size()) {
      case 1: return Eval<1>(ctx, x, y, b, z);
      case 2: return Eval<2>(ctx, x, y, b, z);
      case 3: return Eval<3>(ctx, x, y, b, z);
      case 4: return Eval<4>(ctx, x, y, b, z);
      case 5: return Eval<5>(ctx, x, y, b, z);
      default:
        return absl::UnimplementedError(
            absl::StrCat("broadcast of ", x.shape().DebugString(), " and ",
                         y.shape().DebugString(), " needs more than ", BCast::kMaxRank,
                         " collapsed dimensions"));
    }
  }

 private:
  template <int N>
  static absl::Status Eval(OpKernelContext& ctx, const Tensor& x, const Tensor& y,
                           const BCast& b, Tensor* z) {
    Eigen::array<Eigen::DenseIndex, N> xr, xb, yr, yb, zr;
    for (int i = 0; i < N; ++i) {
      xr[i] = b.x_reshape[i];
      xb[i] = b.x_bcast[i];
      yr[i] = b.y_reshape[i];
      yb[i] = b.y_bcast[i];
      zr[i] = b.x_reshape[i] * b.x_bcast[i];
    }
    using In = Eigen::TensorMap<Eigen::Tensor<const T, N, Eigen::RowMajor, Eigen::DenseIndex>>;
    using OutMap = Eigen::TensorMap<Eigen::Tensor<Out, N, Eigen::RowMajor, Eigen::DenseIndex>>;
    In xm(x.data<T>(), xr), ym(y.data<T>(), yr);
    OutMap zm(z->data<Out>(), zr);
    zm.device(EigenCpu(ctx)) = F::Apply(xm.broadcast(xb), ym.broadcast(yb));
    return absl::OkStatus();
  }
};

}  // namespace gradserve
