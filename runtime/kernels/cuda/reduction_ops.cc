// The CUDA device's reductions (Sum, Mean, Max, Min, ArgMax, BiasAddGrad,
// L2Loss), the softmax family (Softmax, LogSoftmax) and the softmax losses,
// float32. Axes and ArgMax's dimension are host-memory inputs; everything else
// is in device memory. Inputs are checked as the CPU kernels check them
// (runtime/kernels/cpu/reduction_ops.cc, nn_ops.cc, nn_grad_ops.cc,
// loss_ops.cc), with the same codes, the axes and passes by the same code
// (runtime/kernels/reduction_util.h); the device code is reduction_kernels.cu.
//
// The one difference: SparseSoftmaxCrossEntropyWithLogits with a label outside
// [0, classes) fails on the CPU (InvalidArgument) but here gives a NaN loss
// and a NaN backprop row for that example, as TensorFlow's GPU kernel does:
// the labels are in device memory, and reading them on the host would wait
// for the device.
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/reduction_kernels.h"
#include "runtime/kernels/reduction_util.h"

namespace gradserve {
namespace {

enum class Reduce { kSum, kMean, kMax, kMin };

// Reduces the non-empty `x` over `groups` (at least one reduced) into `out`:
// one LaunchReduce per reduced group, first to last, each seeing its input as
// [outer, group, inner]; the partial results between passes are device
// tensors. Only the last pass divides by `divisor`.
absl::Status ReduceGroups(const OpKernel& k, OpKernelContext& ctx, const float* x,
                          std::vector<DimGroup> groups, cuda::Reducer reducer, float divisor,
                          float* out) {
  const cudaStream_t stream = Gpu(ctx).stream();
  Tensor partial;  // what `src` points to after the first pass
  const float* src = x;
  for (;;) {
    const ReducePass p = NextReducePass(groups);
    Tensor next;
    float* dst = out;
    if (!p.last) {
      next = Tensor(ctx.device()->allocator(), DType::kFloat, Shape{p.outer * p.inner});
      dst = next.data<float>();
    }
    GS_RETURN_IF_ERROR(LaunchStatus(k, cuda::LaunchReduce(reducer, src, p.outer, p.r, p.inner,
                                                          p.last ? divisor : 1.f, dst, stream)));
    src = dst;
    // Frees the pass's input: stream-ordered, so after the pass has read it.
    partial = std::move(next);
    if (p.last) return absl::OkStatus();
  }
}

cuda::Reducer ReducerOf(Reduce op) {
  switch (op) {
    case Reduce::kMax:
      return cuda::Reducer::kMax;
    case Reduce::kMin:
      return cuda::Reducer::kMin;
    default:
      return cuda::Reducer::kSum;
  }
}

// Sum, Mean, Max, Min (input, reduction_indices in host memory).
class ReductionKernel final : public OpKernel {
 public:
  ReductionKernel(const Node& node, Reduce op)
      : OpKernel(node), op_(op), keep_dims_(node.GetAttr<bool>("keep_dims").value_or(false)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor& x = ctx.input(0);
    absl::StatusOr<std::vector<bool>> reduced = ReducedAxes(ctx.input(1), x.rank());
    if (!reduced.ok()) return Annotate(reduced.status(), name());
    const Shape out_shape = ReducedShape(x.shape(), *reduced, keep_dims_);
    std::vector<DimGroup> groups = CollapseDims(x.shape(), *reduced);
    if (!AnyReduced(groups) && x.num_elements() > 0) {  // only size-1 dims (or none) reduced
      GS_ASSIGN_OR_RETURN(Tensor y, x.Reshaped(out_shape));
      ctx.set_output(0, std::move(y));
      return absl::OkStatus();
    }
    Tensor* out = ctx.allocate_output(0, out_shape, DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    if (x.num_elements() == 0) {
      return LaunchStatus(*this, cuda::LaunchFill(out->data<float>(), out->num_elements(),
                                                  EmptyValue(), Gpu(ctx).stream()));
    }
    const float divisor =
        op_ == Reduce::kMean ? static_cast<float>(x.num_elements() / out->num_elements()) : 1.f;
    return ReduceGroups(*this, ctx, x.data<float>(), std::move(groups), ReducerOf(op_), divisor,
                        out->data<float>());
  }

 private:
  // The CPU's result of reducing no elements: Sum 0, Mean NaN, Max -inf, Min +inf.
  float EmptyValue() const {
    switch (op_) {
      case Reduce::kSum:
        return 0.f;
      case Reduce::kMean:
        return std::numeric_limits<float>::quiet_NaN();
      case Reduce::kMax:
        return -std::numeric_limits<float>::infinity();
      case Reduce::kMin:
        return std::numeric_limits<float>::infinity();
    }
    return 0.f;
  }

  const Reduce op_;
  const bool keep_dims_;
};

// ArgMax (input, dimension in host memory); output int64 or int32 by
// output_type. Ties go to the first index, as on the CPU.
class ArgMaxKernel final : public OpKernel {
 public:
  explicit ArgMaxKernel(const Node& node)
      : OpKernel(node), output_type_(node.GetAttr<DType>("output_type").value_or(DType::kInt64)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor& x = ctx.input(0);
    absl::StatusOr<int> axis = ArgMaxAxis(x.shape(), ctx.input(1));
    if (!axis.ok()) return Annotate(axis.status(), name());
    const int a = *axis;
    const AxisSplit s = SplitAtAxis(x.shape(), a);
    Shape out_shape = x.shape();
    out_shape.RemoveDim(a);
    const DType out_type = output_type_ == DType::kInt32 ? DType::kInt32 : DType::kInt64;
    Tensor* out = ctx.allocate_output(0, out_shape, out_type);
    if (out->num_elements() == 0) return absl::OkStatus();
    const cudaStream_t stream = Gpu(ctx).stream();
    if (out_type == DType::kInt32) {
      return LaunchStatus(*this, cuda::LaunchArgMax(x.data<float>(), s.outer, s.size, s.inner,
                                                    out->data<int32_t>(), stream));
    }
    return LaunchStatus(*this, cuda::LaunchArgMax(x.data<float>(), s.outer, s.size, s.inner,
                                                  out->data<int64_t>(), stream));
  }

 private:
  DType output_type_;
};

// BiasAddGrad: the sum of out_backprop over every axis but the channel axis,
// seen as [outer, channels, inner] (NHWC: inner = 1; NCHW: inner = the
// spatial size).
class BiasAddGradKernel final : public OpKernel {
 public:
  explicit BiasAddGradKernel(const Node& node) : OpKernel(node), nchw_(DataFormatIsNchw(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& g = ctx.input(0);
    absl::StatusOr<AxisSplit> split = BiasAddGradSplit(g.shape(), nchw_);
    if (!split.ok()) return Annotate(split.status(), name());
    const auto [outer, channels, inner] = *split;
    Tensor* out = ctx.allocate_output(0, Shape{channels}, DType::kFloat);
    if (channels == 0) return absl::OkStatus();
    if (g.num_elements() == 0) {
      return LaunchStatus(*this,
                          cuda::LaunchFill(out->data<float>(), channels, 0.f, Gpu(ctx).stream()));
    }
    std::vector<DimGroup> groups = CollapseDims(Shape{outer, channels, inner}, {true, false, true});
    if (!AnyReduced(groups)) {  // outer == inner == 1: out_backprop is the sum
      return LaunchStatus(
          *this, cudaMemcpyAsync(out->data<float>(), g.data<float>(), sizeof(float) * channels,
                                 cudaMemcpyDeviceToDevice, Gpu(ctx).stream()));
    }
    return ReduceGroups(*this, ctx, g.data<float>(), std::move(groups), cuda::Reducer::kSum, 1.f,
                        out->data<float>());
  }

 private:
  bool nchw_;
};

// L2Loss: sum(t^2) / 2, a scalar.
class L2LossKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& t = ctx.input(0);
    Tensor* out = ctx.allocate_output(0, Shape{}, DType::kFloat);
    return LaunchStatus(*this, cuda::LaunchL2Loss(t.data<float>(), t.num_elements(),
                                                  out->data<float>(), Gpu(ctx).stream()));
  }
};

// Softmax and LogSoftmax over the last axis; the output may take over the
// input's buffer (the kernel works in place).
class SoftmaxKernel final : public OpKernel {
 public:
  SoftmaxKernel(const Node& node, bool log) : OpKernel(node), log_(log) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& logits = ctx.input(0);
    GS_CHECK_ARG(logits.rank() >= 1, name(), ": logits must have rank >= 1, got ",
                 logits.shape().DebugString());
    const int64_t n = logits.num_elements();
    const int64_t cols = logits.dim(logits.rank() - 1);
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, logits.shape(), DType::kFloat);
    if (n == 0) return absl::OkStatus();
    return LaunchStatus(*this, cuda::LaunchSoftmax(log_, logits.data<float>(), out->data<float>(),
                                                   n / cols, cols, Gpu(ctx).stream()));
  }

 private:
  const bool log_;
};

// SoftmaxCrossEntropyWithLogits: (features, labels) [batch, classes] ->
// (loss [batch], backprop [batch, classes]).
class SoftmaxXentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& features = ctx.input(0);
    const Tensor& labels = ctx.input(1);
    GS_RETURN_IF_ERROR(Annotate(CheckSoftmaxXentShapes(features.shape(), labels.shape()), name()));
    const int64_t batch = features.dim(0), classes = features.dim(1);
    Tensor* loss = ctx.allocate_output(0, Shape{batch}, DType::kFloat);
    Tensor* backprop = ctx.allocate_output(1, features.shape(), DType::kFloat);
    return LaunchStatus(*this, cuda::LaunchSoftmaxXent(features.data<float>(), labels.data<float>(),
                                                       loss->data<float>(), backprop->data<float>(),
                                                       batch, classes, Gpu(ctx).stream()));
  }
};

// SparseSoftmaxCrossEntropyWithLogits: features [batch, classes], labels
// [batch] int32/int64 in device memory (see the file comment for labels out
// of range).
class SparseSoftmaxXentKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& features = ctx.input(0);
    const Tensor& labels = ctx.input(1);
    GS_RETURN_IF_ERROR(
        Annotate(CheckSparseSoftmaxXentShapes(features.shape(), labels.shape()), name()));
    GS_CHECK_ARG(labels.dtype() == DType::kInt32 || labels.dtype() == DType::kInt64, name(),
                 ": labels must be int32 or int64, got ", DTypeName(labels.dtype()));
    const int64_t batch = features.dim(0), classes = features.dim(1);
    Tensor* loss = ctx.allocate_output(0, Shape{batch}, DType::kFloat);
    Tensor* backprop = ctx.allocate_output(1, features.shape(), DType::kFloat);
    const cudaStream_t stream = Gpu(ctx).stream();
    if (labels.dtype() == DType::kInt32) {
      return LaunchStatus(
          *this, cuda::LaunchSparseSoftmaxXent(features.data<float>(), labels.data<int32_t>(),
                                               loss->data<float>(), backprop->data<float>(), batch,
                                               classes, stream));
    }
    return LaunchStatus(
        *this, cuda::LaunchSparseSoftmaxXent(features.data<float>(), labels.data<int64_t>(),
                                             loss->data<float>(), backprop->data<float>(), batch,
                                             classes, stream));
  }
};

}  // namespace

absl::Status RegisterCudaReductionKernels(KernelRegistry& r) {
  const HostMemory axes{.inputs = {1}};
  for (auto [op, reduce] : {std::pair{"Sum", Reduce::kSum}, std::pair{"Mean", Reduce::kMean},
                            std::pair{"Max", Reduce::kMax}, std::pair{"Min", Reduce::kMin}}) {
    GS_RETURN_IF_ERROR(RegisterCuda<ReductionKernel>(r, op, {DType::kFloat}, "T", axes, reduce));
  }
  GS_RETURN_IF_ERROR(RegisterCuda<ArgMaxKernel>(r, "ArgMax", {DType::kFloat}, "T", axes));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<BiasAddGradKernel>(r, "BiasAddGrad"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<L2LossKernel>(r, "L2Loss"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<SoftmaxKernel>(r, "Softmax", false));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<SoftmaxKernel>(r, "LogSoftmax", true));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<SoftmaxXentKernel>(r, "SoftmaxCrossEntropyWithLogits"));
  // One kernel for both label dtypes (attr Tlabels), selected by the labels' dtype.
  GS_RETURN_IF_ERROR(
      RegisterCudaFloat<SparseSoftmaxXentKernel>(r, "SparseSoftmaxCrossEntropyWithLogits"));
  return absl::OkStatus();
}

}  // namespace gradserve
