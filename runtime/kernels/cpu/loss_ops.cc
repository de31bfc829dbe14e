// CPU kernels for the loss ops of the nn family (graph/ops/loss_ops.cc).
//
// The softmax cross-entropy kernels work per row in AccumType with the
// log-sum-exp shifted by the row's max, so logits of +-100 neither overflow nor
// lose the result: with m = max_j x_j and lse = m + log(sum_j exp(x_j - m)),
//   loss = sum_j labels_j * (lse - x_j),  backprop_j = softmax_j - labels_j.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cpu/nn_util.h"
#include "runtime/kernels/reduction_util.h"

namespace gradserve {
namespace {

// Writes softmax(x) into `p` and returns lse(x) for one row of n > 0 values.
template <typename A, typename T>
A SoftmaxRow(const T* x, int64_t n, A* p) {
  A max = static_cast<A>(x[0]);
  for (int64_t j = 1; j < n; ++j) max = std::max(max, static_cast<A>(x[j]));
  A sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    p[j] = std::exp(static_cast<A>(x[j]) - max);
    sum += p[j];
  }
  for (int64_t j = 0; j < n; ++j) p[j] /= sum;
  return max + std::log(sum);
}

// (features, labels) [batch, classes] -> (loss [batch], backprop [batch, classes]).
template <typename T>
class SoftmaxXentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& features = ctx.input(0);
    const Tensor& labels = ctx.input(1);
    GS_RETURN_IF_ERROR(CheckSoftmaxXentShapes(features.shape(), labels.shape()));
    const int64_t batch = features.dim(0), classes = features.dim(1);
    Tensor* loss = ctx.allocate_output(0, Shape{batch}, DTypeOf<T>::value);
    Tensor* backprop = ctx.allocate_output(1, features.shape(), DTypeOf<T>::value);
    const T* x = features.data<T>();
    const T* l = labels.data<T>();
    T* out_loss = loss->data<T>();
    T* out_bp = backprop->data<T>();
    std::vector<A> p(classes);
    for (int64_t b = 0; b < batch; ++b) {
      if (classes == 0) {
        out_loss[b] = T(0);
        continue;
      }
      const T* xr = x + b * classes;
      const T* lr = l + b * classes;
      const A lse = SoftmaxRow<A>(xr, classes, p.data());
      A sum = 0;
      for (int64_t j = 0; j < classes; ++j) {
        const A label = static_cast<A>(lr[j]);
        // label * (lse - x) is 0 for a 0 label even when lse - x is huge.
        if (label != A(0)) sum += label * (lse - static_cast<A>(xr[j]));
        out_bp[b * classes + j] = static_cast<T>(p[j] - label);
      }
      out_loss[b] = static_cast<T>(sum);
    }
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
};

// (features [batch, classes], labels [batch] int32/int64) -> (loss, backprop).
// A label outside [0, classes) is InvalidArgument naming it.
template <typename T>
class SparseSoftmaxXentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& features = ctx.input(0);
    const Tensor& labels = ctx.input(1);
    GS_RETURN_IF_ERROR(CheckSparseSoftmaxXentShapes(features.shape(), labels.shape()));
    const int64_t batch = features.dim(0), classes = features.dim(1);
    std::vector<int64_t> label(batch);
    for (int64_t b = 0; b < batch; ++b) {
      label[b] =
          labels.dtype() == DType::kInt32 ? labels.data<int32_t>()[b] : labels.data<int64_t>()[b];
      GS_CHECK_ARG(label[b] >= 0 && label[b] < classes, "received a label value of ", label[b],
                   " (labels[", b, "]) which is outside the valid range of [0, ", classes, ")");
    }
    Tensor* loss = ctx.allocate_output(0, Shape{batch}, DTypeOf<T>::value);
    Tensor* backprop = ctx.allocate_output(1, features.shape(), DTypeOf<T>::value);
    const T* x = features.data<T>();
    T* out_loss = loss->data<T>();
    T* out_bp = backprop->data<T>();
    std::vector<A> p(classes);
    for (int64_t b = 0; b < batch; ++b) {
      const T* xr = x + b * classes;
      const A lse = SoftmaxRow<A>(xr, classes, p.data());
      for (int64_t j = 0; j < classes; ++j) {
        out_bp[b * classes + j] = static_cast<T>(p[j] - (j == label[b] ? A(1) : A(0)));
      }
      out_loss[b] = static_cast<T>(lse - static_cast<A>(xr[label[b]]));
    }
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
};

// sum(t^2) / 2, accumulated in AccumType. Note [L2Loss summation]: one running
// sum is a chain of dependent adds (about 4 cycles an element, 0.7 ms for the
// 670k gradients of a 784-512-512-10 MLP, whose global norm every training step
// takes), so each block of kBlock elements is summed in kLanes independent
// partial sums, which the compiler keeps in vector registers. Blocks run in
// parallel and their sums are added in order: the result does not depend on
// the thread count.
template <typename T>
class L2LossKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& t = ctx.input(0);
    const T* x = t.data<T>();
    const int64_t n = t.num_elements();
    const int64_t blocks = (n + kBlock - 1) / kBlock;
    A sum = 0;
    if (blocks <= 1) {
      sum = SumOfSquares(x, n);
    } else {
      std::vector<A> partial(blocks);
      ParallelFor(ctx, blocks, static_cast<double>(kBlock), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          partial[b] = SumOfSquares(x + b * kBlock, std::min(kBlock, n - b * kBlock));
        }
      });
      for (const A p : partial) sum += p;
    }
    Tensor* out = ctx.allocate_output(0, Shape{}, DTypeOf<T>::value);
    out->data<T>()[0] = static_cast<T>(sum / A(2));
    return absl::OkStatus();
  }

 private:
  using A = AccumType<T>;
  static constexpr int64_t kBlock = 1 << 14;
  static constexpr int kLanes = 32;

  static A SumOfSquares(const T* x, int64_t n) {
    A lanes[kLanes] = {};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes) {
      for (int j = 0; j < kLanes; ++j) {
        const A v = static_cast<A>(x[i + j]);
        lanes[j] += v * v;
      }
    }
    for (int j = 0; i < n; ++i, ++j) {
      const A v = static_cast<A>(x[i]);
      lanes[j] += v * v;
    }
    A sum = 0;
    for (const A lane : lanes) sum += lane;
    return sum;
  }
};

}  // namespace

absl::Status RegisterCpuLossKernels(KernelRegistry& r) {
  using Floats = TypeList<float, double, half, bfloat16>;
  GS_RETURN_IF_ERROR(
      RegisterKernelClass<SoftmaxXentKernel>(r, "SoftmaxCrossEntropyWithLogits", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<SparseSoftmaxXentKernel>(
      r, "SparseSoftmaxCrossEntropyWithLogits", Floats{}));
  GS_RETURN_IF_ERROR(RegisterKernelClass<L2LossKernel>(r, "L2Loss", Floats{}));
  return absl::OkStatus();
}

}  // namespace gradserve
