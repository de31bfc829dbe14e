// runtime/kernels/batch_norm_util.h, for the CPU and the CUDA kernels alike
// (this file is host C++ only and is built on either).
#include "runtime/kernels/batch_norm_util.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

absl::StatusOr<BatchNormParams> BatchNormParamsOf(const Node& node) {
  BatchNormParams p{.avg_factor = 1.0f};
  GS_ASSIGN_OR_RETURN(p.epsilon, node.GetAttr<float>("epsilon"));
  if (node.op() == "FusedBatchNormV3") {
    GS_ASSIGN_OR_RETURN(p.avg_factor, node.GetAttr<float>("exponential_avg_factor"));
  }
  GS_ASSIGN_OR_RETURN(p.is_training, node.GetAttr<bool>("is_training"));
  GS_ASSIGN_OR_RETURN(std::string format, node.GetAttr<std::string>("data_format"));
  p.rank = format == "NDHWC" || format == "NCDHW" ? 5 : 4;
  p.c_axis = format == "NHWC" || format == "NDHWC" ? p.rank - 1 : 1;
  return p;
}

absl::StatusOr<int64_t> CheckBatchNormInputs(const BatchNormParams& p, const OpKernelContext& ctx) {
  const Tensor& x = ctx.input(0);
  GS_CHECK_ARG(x.rank() == p.rank, "x must be ", p.rank, "-dimensional, got ",
               x.shape().DebugString());
  const int64_t channels = x.dim(p.c_axis);
  // Training with factor 1 never reads mean and variance; TF lets them be empty.
  const int checked = p.is_training && p.avg_factor == 1.0f ? 3 : 5;
  static constexpr const char* kNames[] = {"x", "scale", "offset", "mean", "variance"};
  for (int i = 1; i < 5; ++i) {
    const Tensor& v = ctx.input(i);
    GS_CHECK_ARG(v.rank() == 1, kNames[i], " must be a vector, got ", v.shape().DebugString());
    GS_CHECK_ARG(i >= checked || v.dim(0) == channels, kNames[i], " has ", v.dim(0),
                 " elements but x ", x.shape().DebugString(), " has ", channels, " channels");
  }
  return channels;
}

absl::StatusOr<int64_t> CheckBatchNormGradInputs(const BatchNormParams& p,
                                                 const OpKernelContext& ctx) {
  const Tensor& dy = ctx.input(0);
  const Tensor& x = ctx.input(1);
  GS_CHECK_ARG(x.rank() == p.rank, "x must be ", p.rank, "-dimensional, got ",
               x.shape().DebugString());
  GS_CHECK_ARG(dy.shape() == x.shape(), "x and y_backprop must have the same shape, got ",
               x.shape().DebugString(), " and ", dy.shape().DebugString());
  const int64_t channels = x.dim(p.c_axis);
  static constexpr const char* kNames[] = {"scale", "reserve_space_1", "reserve_space_2"};
  for (int i = 2; i < 5; ++i) {
    const Tensor& v = ctx.input(i);
    GS_CHECK_ARG(v.rank() == 1, kNames[i - 2], " must be a vector, got ", v.shape().DebugString());
    GS_CHECK_ARG(v.dim(0) == channels, kNames[i - 2], " has ", v.dim(0), " elements but x ",
                 x.shape().DebugString(), " has ", channels, " channels");
  }
  return channels;
}

}  // namespace gradserve
