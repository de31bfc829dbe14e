// CPU kernel for FusedBatchNormV3 (graph/ops/nn_ops.cc), both modes, as
// TensorFlow's CPU kernel computes them:
//   inference: y = (x - mean) * rsqrt(variance + epsilon) * scale + offset, and
//     batch_mean / batch_variance pass the given mean / variance through;
//   training: the same with the batch's statistics over every axis but the
//     channel one; batch_variance is the unbiased (Bessel-corrected) variance,
//     blended into the given running statistics when exponential_avg_factor != 1.
// reserve_space_1/2 hold the statistics y was normalized with (the biased
// variance in training), reserve_space_3 a scalar 0 as on TF's CPU. An empty x
// gives NaN statistics, as in TensorFlow.
//
// x is viewed as [outer, channels, inner]: channels-last formats have inner = 1,
// channels-first ones have outer = the batch size.
#include <cmath>
#include <limits>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/nn_util.h"

namespace gradserve {
namespace {

struct BatchNormParams {
  float epsilon;
  float avg_factor;
  bool is_training;
  int rank;    // 4, or 5 for NDHWC / NCDHW
  int c_axis;  // the channel axis
};

template <typename T>
class FusedBatchNormKernel final : public OpKernel {
 public:
  FusedBatchNormKernel(const Node& node, const BatchNormParams& p) : OpKernel(node), p_(p) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    GS_CHECK_ARG(x.rank() == p_.rank, "x must be ", p_.rank, "-dimensional, got ",
                 x.shape().DebugString());
    const int64_t channels = x.dim(p_.c_axis);
    // Training with factor 1 never reads mean and variance; TF lets them be empty.
    const int checked = p_.is_training && p_.avg_factor == 1.0f ? 3 : 5;
    static constexpr const char* kNames[] = {"x", "scale", "offset", "mean", "variance"};
    for (int i = 1; i < 5; ++i) {
      const Tensor& v = ctx.input(i);
      GS_CHECK_ARG(v.rank() == 1, kNames[i], " must be a vector, got ", v.shape().DebugString());
      GS_CHECK_ARG(i >= checked || v.dim(0) == channels, kNames[i], " has ", v.dim(0),
                   " elements but x ", x.shape().DebugString(), " has ", channels, " channels");
    }
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < p_.c_axis; ++i) outer *= x.dim(i);
    for (int i = p_.c_axis + 1; i < x.rank(); ++i) inner *= x.dim(i);

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
      BatchStatistics(ctx, x.data<T>(), outer, channels, inner, used_mean, used_var);
      const float n = static_cast<float>(outer * inner);
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
    Normalize(ctx, x.data<T>(), used_mean, used_var, outer, channels, inner, y->data<T>());
    return absl::OkStatus();
  }

 private:
  void Normalize(const OpKernelContext& ctx, const T* x, const std::vector<float>& mean,
                 const std::vector<float>& var, int64_t outer, int64_t channels, int64_t inner,
                 T* y) const {
    const float* scale = ctx.input(1).data<float>();
    const float* offset = ctx.input(2).data<float>();
    std::vector<float> factor(channels);
    for (int64_t c = 0; c < channels; ++c) factor[c] = scale[c] / std::sqrt(var[c] + p_.epsilon);
    ParallelFor(ctx, outer, 4.0 * channels * inner, [&](int64_t begin, int64_t end) {
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

  // Per-channel sums of fn(x, channel) over outer and inner, in double. The outer
  // range is cut into a fixed number of blocks, each with its own partial sums.
  template <typename Fn>
  static std::vector<double> ChannelSums(const OpKernelContext& ctx, const T* x, int64_t outer,
                                         int64_t channels, int64_t inner, Fn fn) {
    const int64_t blocks =
        std::min<int64_t>(outer, 4 * std::max(ctx.device()->intra_op_threads(), 1));
    std::vector<double> partial(blocks * channels, 0.0);
    const double cost = 2.0 * outer / blocks * channels * inner;
    ParallelFor(ctx, blocks, cost, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double* sums = &partial[b * channels];
        for (int64_t o = b * outer / blocks; o < (b + 1) * outer / blocks; ++o) {
          for (int64_t c = 0; c < channels; ++c) {
            const T* row = x + (o * channels + c) * inner;
            double s = 0;
            for (int64_t i = 0; i < inner; ++i) s += fn(static_cast<double>(row[i]), c);
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

  // The batch mean and biased variance of each channel (two passes, for accuracy).
  static void BatchStatistics(const OpKernelContext& ctx, const T* x, int64_t outer,
                              int64_t channels, int64_t inner, std::vector<float>& mean,
                              std::vector<float>& var) {
    const double n = static_cast<double>(outer * inner);
    std::vector<double> m = ChannelSums(ctx, x, outer, channels, inner,
                                        [](double v, int64_t) { return v; });
    for (double& s : m) s /= n;
    std::vector<double> v = ChannelSums(ctx, x, outer, channels, inner, [&m](double xv, int64_t c) {
      const double d = xv - m[c];
      return d * d;
    });
    mean.assign(m.begin(), m.end());
    var.resize(channels);
    for (int64_t c = 0; c < channels; ++c) var[c] = static_cast<float>(v[c] / n);
  }

  BatchNormParams p_;
};

}  // namespace

absl::Status RegisterCpuBatchNormKernels(KernelRegistry& r) {
  return RegisterTyped(
      r, "FusedBatchNormV3", TypeList<float, half, bfloat16>{},
      []<typename T>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        BatchNormParams p;
        GS_ASSIGN_OR_RETURN(p.epsilon, node.GetAttr<float>("epsilon"));
        GS_ASSIGN_OR_RETURN(p.avg_factor, node.GetAttr<float>("exponential_avg_factor"));
        GS_ASSIGN_OR_RETURN(p.is_training, node.GetAttr<bool>("is_training"));
        GS_ASSIGN_OR_RETURN(std::string format, node.GetAttr<std::string>("data_format"));
        p.rank = format == "NDHWC" || format == "NCDHW" ? 5 : 4;
        p.c_axis = format == "NHWC" || format == "NDHWC" ? p.rank - 1 : 1;
        return std::unique_ptr<OpKernel>(new FusedBatchNormKernel<T>(node, p));
      });
}

}  // namespace gradserve
