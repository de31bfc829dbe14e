// CPU kernels for MaxPool and AvgPool (graph/ops/nn_ops.cc). In NHWC a pixel's
// channels are contiguous, so each output pixel combines the in-bounds pixels of
// its window channel by channel: the inner loop runs over channels and
// vectorizes. Windows are clipped to the image: padding never contributes, and
// AvgPool divides by the number of in-bounds pixels (TensorFlow's semantics).
#include <algorithm>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

template <typename T, bool kMax>
class PoolKernel final : public OpKernel {
 public:
  PoolKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    GS_CHECK_ARG(x.rank() == 4, "input must be 4-dimensional, got ", x.shape().DebugString());
    const int64_t batch = x.dim(0), in_h = x.dim(1), in_w = x.dim(2), depth = x.dim(3);
    GS_ASSIGN_OR_RETURN(WindowDim rows, ComputeWindowDim(in_h, w_.ksize[0], 1, w_.stride[0],
                                                         w_.padding, w_.pad[0]));
    GS_ASSIGN_OR_RETURN(WindowDim cols, ComputeWindowDim(in_w, w_.ksize[1], 1, w_.stride[1],
                                                         w_.padding, w_.pad[1]));
    const int64_t out_h = rows.output, out_w = cols.output;
    Tensor* out = ctx.allocate_output(0, Shape{batch, out_h, out_w, depth}, DTypeOf<T>::value);
    if (out->num_elements() == 0) return absl::OkStatus();
    const T* in = x.data<T>();
    T* y = out->data<T>();
    const double cost = static_cast<double>(out_w * w_.ksize[0] * w_.ksize[1] * depth);
    ParallelFor(ctx, batch * out_h, cost, [&](int64_t begin, int64_t end) {
      std::vector<A> acc(depth);
      for (int64_t r = begin; r < end; ++r) {
        const int64_t b = r / out_h, oy = r % out_h;
        const int64_t y0 = oy * w_.stride[0] - rows.pad_before;
        const int64_t y_lo = std::max<int64_t>(y0, 0), y_hi = std::min(y0 + w_.ksize[0], in_h);
        for (int64_t ox = 0; ox < out_w; ++ox) {
          const int64_t x0 = ox * w_.stride[1] - cols.pad_before;
          const int64_t x_lo = std::max<int64_t>(x0, 0), x_hi = std::min(x0 + w_.ksize[1], in_w);
          const T* image = in + b * in_h * in_w * depth;
          Window(image, in_w, depth, y_lo, y_hi, x_lo, x_hi, acc.data());
          T* dst = y + (r * out_w + ox) * depth;
          if constexpr (kMax) {
            std::copy_n(acc.data(), depth, dst);
          } else {
            const A inv_count = A(1) / static_cast<A>((y_hi - y_lo) * (x_hi - x_lo));
            for (int64_t c = 0; c < depth; ++c) dst[c] = static_cast<T>(acc[c] * inv_count);
          }
        }
      }
    });
    return absl::OkStatus();
  }

 private:
  // Max compares in T (exact for every type); the average sums in float or wider.
  using A = std::conditional_t<kMax, T, AccumType<T>>;

  // Combines pixels [y_lo, y_hi) x [x_lo, x_hi) into acc (the max, or the sum).
  // Empty only for an empty image under explicit padding (graph/ops/nn_ops.cc
  // keeps explicit pads smaller than the window): the max is then the lowest
  // value, as on the GPU, and nothing is read.
  static void Window(const T* image, int64_t in_w, int64_t depth, int64_t y_lo, int64_t y_hi,
                     int64_t x_lo, int64_t x_hi, A* acc) {
    const bool empty = y_lo >= y_hi || x_lo >= x_hi;
    for (int64_t c = 0; c < depth; ++c) {
      if constexpr (kMax) {
        acc[c] = empty ? std::numeric_limits<A>::lowest()
                       : static_cast<A>(image[(y_lo * in_w + x_lo) * depth + c]);
      } else {
        acc[c] = A(0);
      }
    }
    for (int64_t iy = y_lo; iy < y_hi; ++iy) {
      for (int64_t ix = x_lo; ix < x_hi; ++ix) {
        const T* src = image + (iy * in_w + ix) * depth;
        for (int64_t c = 0; c < depth; ++c) {
          if constexpr (kMax) {
            acc[c] = src[c] > acc[c] ? src[c] : acc[c];
          } else {
            acc[c] += static_cast<A>(src[c]);
          }
        }
      }
    }
  }

  Window2D w_;
};

template <bool kMax, typename... Ts>
absl::Status RegisterPool(KernelRegistry& r, const char* op, TypeList<Ts...> types) {
  return RegisterWindowKernel(r, op, types, /*conv=*/false,
                              []<typename T>(const Node& node, const Window2D& w) {
                                return new PoolKernel<T, kMax>(node, w);
                              });
}

}  // namespace

absl::Status RegisterCpuPoolingKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterPool<true>(
      r, "MaxPool",
      TypeList<float, double, half, bfloat16, int8_t, int16_t, int32_t, int64_t, uint8_t>{}));
  GS_RETURN_IF_ERROR(
      RegisterPool<false>(r, "AvgPool", TypeList<float, double, half, bfloat16>{}));
  return absl::OkStatus();
}

}  // namespace gradserve
