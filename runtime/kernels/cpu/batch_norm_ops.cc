// CPU kernels for FusedBatchNormV3 (graph/ops/nn_ops.cc) and its gradient
// FusedBatchNormGradV3 (graph/ops/nn_grad_ops.cc), both modes, as TensorFlow's
// CPU kernels compute them. The forward op:
//   inference: y = (x - mean) * rsqrt(variance + epsilon) * scale + offset, and
//     batch_mean / batch_variance pass the given mean / variance through;
//   training: the same with the batch's statistics over every axis but the
//     channel one; batch_variance is the unbiased (Bessel-corrected) variance,
//     blended into the given running statistics when exponential_avg_factor != 1.
// reserve_space_1/2 hold the statistics y was normalized with (the biased
// variance in training), reserve_space_3 a scalar 0 as on TF's CPU. An empty x
// gives NaN statistics, as in TensorFlow.
//
// The gradient (reserve_space_1/2 = mean m and variance v as above, r = rsqrt(v + epsilon),
// sums and means over the n elements of a channel):
//   offset_backprop = sum(dy), scale_backprop = r * sum(dy * (x - m)),
//   training:  x_backprop = scale * r * (dy - mean(dy) - (x - m) * mean(dy * (x - m)) * r^2),
//   inference: x_backprop = scale * r * dy (m and v are constants),
// reserve_space_4/5 empty. Unlike TensorFlow's CPU kernel, inference accepts every
// data format. An empty x gives zero scale and offset gradients, as in TensorFlow.
//
// x is viewed as [outer, channels, inner]: channels-last formats have inner = 1,
// channels-first ones have outer = the batch size. Sums are accumulated in double,
// element-wise arithmetic is in float for every T.
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/batch_norm_util.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

// x of `shape` viewed as [outer, channels, inner] around the channel axis.
struct ChannelView {
  int64_t outer = 1, channels = 0, inner = 1;

  ChannelView(const Shape& shape, int c_axis) : channels(shape.dim(c_axis)) {
    for (int i = 0; i < c_axis; ++i) outer *= shape.dim(i);
    for (int i = c_axis + 1; i < shape.rank(); ++i) inner *= shape.dim(i);
  }
  int64_t per_channel() const { return outer * inner; }
};

// Per-channel sums of fn(i, c) over the flat indices i of channel c, in double.
// The outer range is cut into a fixed number of blocks, each with its own
// partial sums.
template <typename Fn>
std::vector<double> ChannelSums(const OpKernelContext& ctx, const ChannelView& v, Fn fn) {
  const int64_t channels = v.channels, inner = v.inner;
  const int64_t blocks =
      std::min<int64_t>(v.outer, 4 * std::max(ctx.device()->intra_op_threads(), 1));
  std::vector<double> partial(blocks * channels, 0.0);
  const double cost = 2.0 * v.outer / blocks * channels * inner;
  ParallelFor(ctx, blocks, cost, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double* sums = &partial[b * channels];
      for (int64_t o = b * v.outer / blocks; o < (b + 1) * v.outer / blocks; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t base = (o * channels + c) * inner;
          double s = 0;
          for (int64_t i = 0; i < inner; ++i) s += fn(base + i, c);
          sums[c] += s;
        }
      }
    }
  });
  std::vector<double> total(channels, 0.0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t c = 0; c < channels; ++c) total[c] += partial[b * channels + c];
  return total;
}

template <typename T>
class FusedBatchNormKernel final : public OpKernel {
 public:
  FusedBatchNormKernel(const Node& node, const BatchNormParams& p) : OpKernel(node), p_(p) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    GS_ASSIGN_OR_RETURN(const int64_t channels, CheckBatchNormInputs(p_, ctx));
    const ChannelView view(x.shape(), p_.c_axis);

    Tensor* y = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<T>::value);
    float* stats[4];
    for (int i = 0; i < 4; ++i) {
      stats[i] = ctx.allocate_output(i + 1, Shape{channels}, DType::kFloat)->data<float>();
    }
    ctx.allocate_output(5, Shape{}, DType::kFloat)->scalar<float>() = 0.0f;
    if (x.num_elements() == 0) {
      for (float* s : stats) std::fill_n(s, channels, std::numeric_limits<float>::quiet_NaN());
      return absl::OkStatus();
    }
    const float* mean = ctx.input(3).data<float>();
    const float* variance = ctx.input(4).data<float>();
    std::vector<float> used_mean(mean, mean + (p_.is_training ? 0 : channels));
    std::vector<float> used_var(variance, variance + (p_.is_training ? 0 : channels));
    if (p_.is_training) {
      BatchStatistics(ctx, x.data<T>(), view, used_mean, used_var);
      const float n = static_cast<float>(view.per_channel());
      const float bessel = n > 1 ? n / (n - 1) : 1.0f;
      const float f = p_.avg_factor;
      for (int64_t c = 0; c < channels; ++c) {
        stats[0][c] = f == 1.0f ? used_mean[c] : (1 - f) * mean[c] + f * used_mean[c];
        stats[1][c] = f == 1.0f ? used_var[c] * bessel
                                : (1 - f) * variance[c] + f * bessel * used_var[c];
      }
    } else {
      std::copy_n(mean, channels, stats[0]);
      std::copy_n(variance, channels, stats[1]);
    }
    std::copy_n(used_mean.data(), channels, stats[2]);
    std::copy_n(used_var.data(), channels, stats[3]);
    Normalize(ctx, x.data<T>(), used_mean, used_var, view, y->data<T>());
    return absl::OkStatus();
  }

 private:
  void Normalize(const OpKernelContext& ctx, const T* x, const std::vector<float>& mean,
                 const std::vector<float>& var, const ChannelView& view, T* y) const {
    const int64_t channels = view.channels, inner = view.inner;
    const float* scale = ctx.input(1).data<float>();
    const float* offset = ctx.input(2).data<float>();
    std::vector<float> factor(channels);
    for (int64_t c = 0; c < channels; ++c) factor[c] = scale[c] / std::sqrt(var[c] + p_.epsilon);
    ParallelFor(ctx, view.outer, 4.0 * channels * inner, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t base = (o * channels + c) * inner;
          for (int64_t i = 0; i < inner; ++i) {
            y[base + i] =
                static_cast<T>((static_cast<float>(x[base + i]) - mean[c]) * factor[c] + offset[c]);
          }
        }
      }
    });
  }

  // The batch mean and biased variance of each channel (two passes, for accuracy).
  static void BatchStatistics(const OpKernelContext& ctx, const T* x, const ChannelView& view,
                              std::vector<float>& mean, std::vector<float>& var) {
    const double n = static_cast<double>(view.per_channel());
    std::vector<double> m =
        ChannelSums(ctx, view, [x](int64_t i, int64_t) { return static_cast<double>(x[i]); });
    for (double& s : m) s /= n;
    std::vector<double> v = ChannelSums(ctx, view, [x, &m](int64_t i, int64_t c) {
      const double d = static_cast<double>(x[i]) - m[c];
      return d * d;
    });
    mean.assign(m.begin(), m.end());
    var.resize(view.channels);
    for (int64_t c = 0; c < view.channels; ++c) var[c] = static_cast<float>(v[c] / n);
  }

  BatchNormParams p_;
};

template <typename T>
class FusedBatchNormGradKernel final : public OpKernel {
 public:
  FusedBatchNormGradKernel(const Node& node, const BatchNormParams& p) : OpKernel(node), p_(p) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& dy = ctx.input(0);
    const Tensor& x = ctx.input(1);
    GS_ASSIGN_OR_RETURN(const int64_t channels, CheckBatchNormGradInputs(p_, ctx));
    Tensor* dx = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DTypeOf<T>::value);
    float* d_scale = ctx.allocate_output(1, Shape{channels}, DType::kFloat)->data<float>();
    float* d_offset = ctx.allocate_output(2, Shape{channels}, DType::kFloat)->data<float>();
    ctx.allocate_output(3, Shape{0}, DType::kFloat);
    ctx.allocate_output(4, Shape{0}, DType::kFloat);
    if (x.num_elements() == 0) {
      std::fill_n(d_scale, channels, 0.0f);
      std::fill_n(d_offset, channels, 0.0f);
      return absl::OkStatus();
    }
    const ChannelView view(x.shape(), p_.c_axis);
    const T* dyp = dy.data<T>();
    const T* xp = x.data<T>();
    const float* scale = ctx.input(2).data<float>();
    const float* mean = ctx.input(3).data<float>();
    const float* var = ctx.input(4).data<float>();
    const std::vector<double> sum_dy =
        ChannelSums(ctx, view, [dyp](int64_t i, int64_t) { return static_cast<double>(dyp[i]); });
    const std::vector<double> sum_dy_xc = ChannelSums(ctx, view, [&](int64_t i, int64_t c) {
      return static_cast<double>(dyp[i]) * (static_cast<double>(xp[i]) - mean[c]);
    });
    // x_backprop = a * dy + b * (x - m) + k per channel.
    std::vector<float> a(channels), b(channels, 0.0f), k(channels, 0.0f);
    const double n = static_cast<double>(view.per_channel());
    for (int64_t c = 0; c < channels; ++c) {
      const double r = 1.0 / std::sqrt(static_cast<double>(var[c]) + p_.epsilon);
      d_offset[c] = static_cast<float>(sum_dy[c]);
      d_scale[c] = static_cast<float>(sum_dy_xc[c] * r);
      const double sr = scale[c] * r;
      a[c] = static_cast<float>(sr);
      if (p_.is_training) {
        b[c] = static_cast<float>(-sr * r * r * sum_dy_xc[c] / n);
        k[c] = static_cast<float>(-sr * sum_dy[c] / n);
      }
    }
    T* out = dx->data<T>();
    const int64_t inner = view.inner;
    ParallelFor(ctx, view.outer, 6.0 * channels * inner, [&](int64_t begin, int64_t end) {
      for (int64_t o = begin; o < end; ++o) {
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t base = (o * channels + c) * inner;
          for (int64_t i = base; i < base + inner; ++i) {
            const float xc = static_cast<float>(xp[i]) - mean[c];
            out[i] = static_cast<T>(a[c] * static_cast<float>(dyp[i]) + b[c] * xc + k[c]);
          }
        }
      }
    });
    return absl::OkStatus();
  }

 private:
  BatchNormParams p_;
};

}  // namespace

absl::Status RegisterCpuBatchNormKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(
      RegisterTyped(r, "FusedBatchNormV3", TypeList<float, half, bfloat16>{},
                    []<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
                      GS_ASSIGN_OR_RETURN(BatchNormParams p, BatchNormParamsOf(node));
                      return std::unique_ptr<OpKernel>(new FusedBatchNormKernel<T>(node, p));
                    }));
  return RegisterTyped(
      r, "FusedBatchNormGradV3", TypeList<float, half, bfloat16>{},
      []<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        GS_ASSIGN_OR_RETURN(BatchNormParams p, BatchNormParamsOf(node));
        return std::unique_ptr<OpKernel>(new FusedBatchNormGradKernel<T>(node, p));
      });
}

}  // namespace gradserve
