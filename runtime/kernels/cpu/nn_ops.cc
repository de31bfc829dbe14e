// CPU kernels for neural-network ops (graph/ops/nn_ops.cc): activations, BiasAdd
// and the softmax family here; Conv2D, pooling and batch norm in their own files,
// the backward ops in nn_grad_ops.cc (with pooling_grad_ops.cc, conv_grad_ops.cc)
// and the losses in loss_ops.cc.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cpu/nn_util.h"
#include "runtime/kernels/reduction_util.h"

namespace gradserve {
namespace {

using functor::EluFn;
using functor::Relu6Fn;
using functor::ReluFn;
using functor::SigmoidFn;
using functor::TanhFn;

template <typename T> using ReluKernel = UnaryKernel<T, ReluFn>;
template <typename T> using Relu6Kernel = UnaryKernel<T, Relu6Fn>;
template <typename T> using EluKernel = UnaryKernel<T, EluFn>;
template <typename T> using SigmoidKernel = UnaryKernel<T, SigmoidFn>;
template <typename T> using TanhKernel = UnaryKernel<T, TanhFn>;

// value + bias along the channel axis, viewing value as [outer, channels, inner]
// (NHWC: inner = 1; NCHW: inner = the spatial size).
template <typename T>
class BiasAddKernel final : public OpKernel {
 public:
  explicit BiasAddKernel(const Node& node) : OpKernel(node), nchw_(DataFormatIsNchw(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& value = ctx.input(0);
    const Tensor& bias = ctx.input(1);
    GS_ASSIGN_OR_RETURN(const AxisSplit split, BiasAddSplit(value.shape(), bias.shape(), nchw_));
    const int64_t outer = split.outer, channels = split.size, inner = split.inner;
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, value.shape(), DTypeOf<T>::value);
    const T* x = value.data<T>();
    const T* b = bias.data<T>();
    T* y = out->data<T>();
    ParallelFor(ctx, outer, static_cast<double>(channels * inner), [&](int64_t begin, int64_t end) {
      if (inner == 1) {
        // NHWC: the channel is the contiguous axis; a plain row loop vectorizes.
        for (int64_t o = begin; o < end; ++o) {
          const T* xr = x + o * channels;
          T* yr = y + o * channels;
          for (int64_t c = 0; c < channels; ++c) yr[c] = xr[c] + b[c];
        }
        return;
      }
      for (int64_t o = begin; o < end; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t base = (o * channels + c) * inner;
          for (int64_t i = 0; i < inner; ++i) y[base + i] = x[base + i] + b[c];
        }
      }
    });
    return absl::OkStatus();
  }

 private:
  bool nchw_;
};

// Softmax and LogSoftmax over the last axis. Each row is shifted by its max
// before exponentiating, so large logits neither overflow nor lose the result.
template <typename T, bool kLog>
class SoftmaxKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& logits = ctx.input(0);
    GS_CHECK_ARG(logits.rank() >= 1, "logits must have rank >= 1, got ",
                 logits.shape().DebugString());
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, logits.shape(), DTypeOf<T>::value);
    const int64_t cols = logits.dim(logits.rank() - 1);
    if (logits.num_elements() == 0) return absl::OkStatus();
    const int64_t rows = logits.num_elements() / cols;
    const T* x = logits.data<T>();
    T* y = out->data<T>();
    ParallelFor(ctx, rows, 20.0 * cols, [&](int64_t begin, int64_t end) {
      std::vector<A> scratch(std::is_same_v<T, A> ? 0 : cols);
      for (int64_t r = begin; r < end; ++r) Row(x + r * cols, y + r * cols, cols, scratch);
    });
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
  using Array = Eigen::Array<A, Eigen::Dynamic, 1>;

  // Safe when x == y (the output may forward the input's buffer): every write
  // follows the reads of the same elements.
  static void Row(const T* x, T* y, int64_t n, std::vector<A>& scratch) {
    const A* in = nullptr;
    A* work = nullptr;
    if constexpr (std::is_same_v<T, A>) {
      in = x;
      work = y;
    } else {
      for (int64_t i = 0; i < n; ++i) scratch[i] = static_cast<A>(x[i]);
      in = work = scratch.data();
    }
    Eigen::Map<const Array> xa(in, n);
    Eigen::Map<Array> wa(work, n);
    const A max = xa.maxCoeff();
    if constexpr (kLog) {
      const A log_sum = std::log((xa - max).exp().sum());
      wa = xa - (max + log_sum);
    } else {
      wa = (xa - max).exp();
      wa *= A(1) / wa.sum();
    }
    if constexpr (!std::is_same_v<T, A>) {
      for (int64_t i = 0; i < n; ++i) y[i] = static_cast<T>(work[i]);
    }
  }
};

template <typename T> using SoftmaxOnly = SoftmaxKernel<T, false>;
template <typename T> using LogSoftmaxKernel = SoftmaxKernel<T, true>;

}  // namespace

absl::Status RegisterCpuNnGradKernels(KernelRegistry& r);  // nn_grad_ops.cc
absl::Status RegisterCpuLossKernels(KernelRegistry& r);    // loss_ops.cc

absl::Status RegisterCpuNnKernels(KernelRegistry& r) {
  using Floats = TypeList<float, double, half, bfloat16>;
  using Real = TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>;
  GS_RETURN_IF_ERROR(RegisterKernelClass<BiasAddKernel>(r, "BiasAdd", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<ReluKernel>(r, "Relu", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<Relu6Kernel>(r, "Relu6", Real{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<EluKernel>(r, "Elu", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<SigmoidKernel>(r, "Sigmoid", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<TanhKernel>(r, "Tanh", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<SoftmaxOnly>(r, "Softmax", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<LogSoftmaxKernel>(r, "LogSoftmax", Floats{}));
  GS_RETURN_IF_ERROR(RegisterCpuConvKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuPoolingKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuBatchNormKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuNnGradKernels(r));
  GS_RETURN_IF_ERROR(RegisterCpuLossKernels(r));
  return absl::OkStatus();
}

}  // namespace gradserve
