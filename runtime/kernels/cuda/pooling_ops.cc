// The CUDA device's pooling and batch-norm kernels (float32): MaxPool, AvgPool,
// MaxPoolGrad, MaxPoolGradGrad, AvgPoolGrad, FusedBatchNormV3 and
// FusedBatchNormGradV3. Each validates exactly as its CPU kernel does
// (runtime/kernels/cpu/pooling_ops.cc, pooling_grad_ops.cc, batch_norm_ops.cc),
// with the same status codes, and computes in the same order and precision
// (pooling_kernels.h). Every data format of the ops is taken: NHWC and NCHW
// for pooling (the CPU's pooling takes NHWC only, as in TensorFlow; the CUDA
// kernels scan windows in the same order in either layout), NHWC, NCHW, NDHWC
// and NCDHW for batch norm.
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/batch_norm_util.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/pooling_kernels.h"
#include "runtime/kernels/cuda/reduction_kernels.h"

namespace gradserve {
namespace {

const float* In(OpKernelContext& ctx, int i) { return ctx.input(i).data<float>(); }

// Registers a float32 ("T") kernel whose construction may fail: `factory`
// parses and checks the node's attrs once, as the CPU kernels' factories do.
absl::Status RegisterFallible(KernelRegistry& r, std::string op, KernelFactory factory,
                              HostMemory host = {}) {
  return r.Register(KernelDef{.op = std::move(op),
                              .device_type = kDeviceCuda,
                              .type_attr = "T",
                              .types = {DType::kFloat},
                              .factory = std::move(factory),
                              .host_memory_inputs = std::move(host.inputs),
                              .host_memory_outputs = std::move(host.outputs)});
}

// Device scratch of `elements` elements of `dtype`, freed in stream order when
// the returned tensor goes: the kernels queued before then still see it.
Tensor Scratch(OpKernelContext& ctx, DType dtype, int64_t elements) {
  return Tensor(Gpu(ctx).allocator(), dtype, Shape{elements});
}

// ---- Pooling ----

// The window attrs of a pooling node, or their error naming the node.
absl::StatusOr<Window2D> PoolWindow(const Node& node) {
  absl::StatusOr<Window2D> w = ParseWindow2D(node, /*conv=*/false);
  if (!w.ok()) return Annotate(w.status(), node.name());
  return *w;
}

// The clipped windows over a 4-D input of shape `in` in the window's data
// format (as the CPU's MakeGeometry); `input` names the input in the rank error.
absl::StatusOr<cuda::PoolDims> PoolGeometry(const OpKernel& k, const Window2D& w, const Shape& in,
                                            const char* input) {
  GS_CHECK_ARG(in.rank() == 4, k.name(), ": ", input, " must be 4-dimensional, got ",
               in.DebugString());
  cuda::PoolDims d{.batch = in.dim(0),
                   .in_h = in.dim(w.h_axis()),
                   .in_w = in.dim(w.w_axis()),
                   .depth = in.dim(w.c_axis()),
                   .channels_last = w.channels_last};
  absl::StatusOr<WindowDim> rows =
      ComputeWindowDim(d.in_h, w.ksize[0], 1, w.stride[0], w.padding, w.pad[0]);
  if (!rows.ok()) return Annotate(rows.status(), k.name());
  absl::StatusOr<WindowDim> cols =
      ComputeWindowDim(d.in_w, w.ksize[1], 1, w.stride[1], w.padding, w.pad[1]);
  if (!cols.ok()) return Annotate(cols.status(), k.name());
  d.out_h = rows->output;
  d.out_w = cols->output;
  d.k_h = w.ksize[0];
  d.k_w = w.ksize[1];
  d.stride_h = w.stride[0];
  d.stride_w = w.stride[1];
  d.pad_top = rows->pad_before;
  d.pad_left = cols->pad_before;
  return d;
}

Shape OutShape(const cuda::PoolDims& d) {
  return d.channels_last ? Shape{d.batch, d.out_h, d.out_w, d.depth}
                         : Shape{d.batch, d.depth, d.out_h, d.out_w};
}

// MaxPool and AvgPool.
class PoolKernel final : public OpKernel {
 public:
  PoolKernel(const Node& node, const Window2D& w, cuda::PoolKind kind)
      : OpKernel(node), w_(w), kind_(kind) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    GS_ASSIGN_OR_RETURN(cuda::PoolDims d, PoolGeometry(*this, w_, ctx.input(0).shape(), "input"));
    Tensor* y = ctx.allocate_output(0, OutShape(d), DType::kFloat);
    return LaunchStatus(
        *this, cuda::LaunchPool(kind_, d, In(ctx, 0), y->data<float>(), Gpu(ctx).stream()));
  }

 private:
  Window2D w_;
  cuda::PoolKind kind_;
};

enum class PoolGrad { kMax, kMaxGradGrad, kAvg };

// MaxPoolGrad(orig_input, orig_output, grad), MaxPoolGradGrad(orig_input,
// orig_output, grad) and AvgPoolGrad(orig_input_shape (host), grad).
class PoolGradKernel final : public OpKernel {
 public:
  PoolGradKernel(const Node& node, const Window2D& w, PoolGrad mode)
      : OpKernel(node), w_(w), mode_(mode) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const bool avg = mode_ == PoolGrad::kAvg, grad_grad = mode_ == PoolGrad::kMaxGradGrad;
    GS_RETURN_IF_ERROR(avg ? CheckOnDevice(*this, ctx, {0}) : CheckOnDevice(*this, ctx));
    Shape in_shape;
    if (avg) {
      const Tensor& dims = ctx.input(0);
      GS_CHECK_ARG(dims.rank() == 1 && dims.num_elements() == 4, name(),
                   ": orig_input_shape must be a vector of 4 elements, got ",
                   dims.shape().DebugString());
      // Read on the host: a copy left on the device is a wiring bug, not a segfault.
      GS_CHECK_ARG(dims.dtype() == DType::kInt32 && dims.host_accessible(), name(),
                   ": orig_input_shape must be int32 in host memory");
      for (int i = 0; i < 4; ++i) in_shape.AddDim(dims.data<int32_t>()[i]);
    } else {
      in_shape = ctx.input(0).shape();
    }
    GS_ASSIGN_OR_RETURN(cuda::PoolDims d, PoolGeometry(*this, w_, in_shape, "orig_input"));
    const Shape out_shape = OutShape(d);
    const Tensor& grad = ctx.input(avg ? 1 : 2);
    const Shape& want = grad_grad ? in_shape : out_shape;
    GS_CHECK_ARG(grad.shape() == want, name(), ": grad must have shape ", want.DebugString(),
                 ", got ", grad.shape().DebugString());
    if (!avg) {
      GS_CHECK_ARG(ctx.input(1).shape() == out_shape, name(), ": orig_output must have shape ",
                   out_shape.DebugString(), ", got ", ctx.input(1).shape().DebugString());
    }
    Tensor* out = ctx.allocate_output(0, grad_grad ? out_shape : in_shape, DType::kFloat);
    const cudaStream_t stream = Gpu(ctx).stream();
    const float* g = In(ctx, avg ? 1 : 2);
    switch (mode_) {
      case PoolGrad::kMax: {
        const Tensor argmax = Scratch(ctx, DType::kInt64, d.out_size());
        return LaunchStatus(*this, cuda::LaunchMaxPoolGrad(d, In(ctx, 0), g, argmax.data<int64_t>(),
                                                           out->data<float>(), stream));
      }
      case PoolGrad::kMaxGradGrad:
        return LaunchStatus(
            *this, cuda::LaunchMaxPoolGradGrad(d, In(ctx, 0), g, out->data<float>(), stream));
      case PoolGrad::kAvg:
        return LaunchStatus(*this, cuda::LaunchAvgPoolGrad(d, g, out->data<float>(), stream));
    }
    return absl::InternalError(absl::StrCat(name(), ": unknown pooling gradient"));
  }

 private:
  Window2D w_;
  PoolGrad mode_;
};

template <typename K, typename Mode>
KernelFactory PoolFactory(Mode mode) {
  return [mode](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
    GS_ASSIGN_OR_RETURN(Window2D w, PoolWindow(node));
    return std::unique_ptr<OpKernel>(new K(node, w, mode));
  };
}

// ---- Batch normalization (attrs and checks: runtime/kernels/batch_norm_util.h) ----

// `shape` viewed as [outer, channels, inner] around axis `c_axis`.
cuda::ChannelDims ChannelView(const Shape& shape, int c_axis) {
  cuda::ChannelDims d{.outer = 1, .channels = shape.dim(c_axis), .inner = 1};
  for (int i = 0; i < c_axis; ++i) d.outer *= shape.dim(i);
  for (int i = c_axis + 1; i < shape.rank(); ++i) d.inner *= shape.dim(i);
  return d;
}

Tensor BatchNormScratch(OpKernelContext& ctx, const cuda::ChannelDims& d) {
  return Scratch(ctx, DType::kDouble, cuda::BatchNormScratchBytes(d) / 8);
}

// FusedBatchNormV3(x, scale, offset, mean, variance) -> y, batch_mean,
// batch_variance, reserve_space_1..3 (a scalar 0, as on the CPU).
class FusedBatchNormKernel final : public OpKernel {
 public:
  FusedBatchNormKernel(const Node& node, const BatchNormParams& p) : OpKernel(node), p_(p) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    absl::StatusOr<int64_t> checked = CheckBatchNormInputs(p_, ctx);
    if (!checked.ok()) return Annotate(checked.status(), name());
    const int64_t channels = *checked;
    const cuda::ChannelDims d = ChannelView(x.shape(), p_.c_axis);
    Tensor* y = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DType::kFloat);
    float* stats[4];
    for (int i = 0; i < 4; ++i) {
      stats[i] = ctx.allocate_output(i + 1, Shape{channels}, DType::kFloat)->data<float>();
    }
    Tensor* reserve_3 = ctx.allocate_output(5, Shape{}, DType::kFloat);
    const Tensor scratch = BatchNormScratch(ctx, d);
    const cudaStream_t stream = Gpu(ctx).stream();
    GS_RETURN_IF_ERROR(
        LaunchStatus(*this, cuda::LaunchFill(reserve_3->data<float>(), 1, 0.0f, stream)));
    const cuda::BatchNormForward t{.x = In(ctx, 0),
                                   .scale = In(ctx, 1),
                                   .offset = In(ctx, 2),
                                   .mean = In(ctx, 3),
                                   .variance = In(ctx, 4),
                                   .y = y->data<float>(),
                                   .batch_mean = stats[0],
                                   .batch_variance = stats[1],
                                   .saved_mean = stats[2],
                                   .saved_variance = stats[3]};
    return LaunchStatus(
        *this, cuda::LaunchBatchNormForward(d, t, p_.epsilon, p_.avg_factor, p_.is_training,
                                            scratch.raw_data(), stream));
  }

 private:
  BatchNormParams p_;
};

// FusedBatchNormGradV3(y_backprop, x, scale, reserve_space_1..3) -> x_backprop,
// scale_backprop, offset_backprop, reserve_space_4/5 (empty).
class FusedBatchNormGradKernel final : public OpKernel {
 public:
  FusedBatchNormGradKernel(const Node& node, const BatchNormParams& p) : OpKernel(node), p_(p) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(1);
    absl::StatusOr<int64_t> checked = CheckBatchNormGradInputs(p_, ctx);
    if (!checked.ok()) return Annotate(checked.status(), name());
    const int64_t channels = *checked;
    const cuda::ChannelDims d = ChannelView(x.shape(), p_.c_axis);
    Tensor* dx = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DType::kFloat);
    float* d_scale = ctx.allocate_output(1, Shape{channels}, DType::kFloat)->data<float>();
    float* d_offset = ctx.allocate_output(2, Shape{channels}, DType::kFloat)->data<float>();
    ctx.allocate_output(3, Shape{0}, DType::kFloat);
    ctx.allocate_output(4, Shape{0}, DType::kFloat);
    const Tensor scratch = BatchNormScratch(ctx, d);
    const cuda::BatchNormGrad t{.dy = In(ctx, 0),
                                .x = In(ctx, 1),
                                .scale = In(ctx, 2),
                                .mean = In(ctx, 3),
                                .variance = In(ctx, 4),
                                .dx = dx->data<float>(),
                                .d_scale = d_scale,
                                .d_offset = d_offset};
    return LaunchStatus(*this, cuda::LaunchBatchNormGrad(d, t, p_.epsilon, p_.is_training,
                                                         scratch.raw_data(), Gpu(ctx).stream()));
  }

 private:
  BatchNormParams p_;
};

template <typename K>
KernelFactory BatchNormFactory() {
  return [](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
    absl::StatusOr<BatchNormParams> p = BatchNormParamsOf(node);
    if (!p.ok()) return Annotate(p.status(), node.name());
    return std::unique_ptr<OpKernel>(new K(node, *p));
  };
}

}  // namespace

absl::Status RegisterCudaPoolingKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterFallible(r, "MaxPool", PoolFactory<PoolKernel>(cuda::PoolKind::kMax)));
  GS_RETURN_IF_ERROR(RegisterFallible(r, "AvgPool", PoolFactory<PoolKernel>(cuda::PoolKind::kAvg)));
  GS_RETURN_IF_ERROR(
      RegisterFallible(r, "MaxPoolGrad", PoolFactory<PoolGradKernel>(PoolGrad::kMax)));
  GS_RETURN_IF_ERROR(
      RegisterFallible(r, "MaxPoolGradGrad", PoolFactory<PoolGradKernel>(PoolGrad::kMaxGradGrad)));
  GS_RETURN_IF_ERROR(RegisterFallible(r, "AvgPoolGrad", PoolFactory<PoolGradKernel>(PoolGrad::kAvg),
                                      HostMemory{.inputs = {0}}));
  GS_RETURN_IF_ERROR(
      RegisterFallible(r, "FusedBatchNormV3", BatchNormFactory<FusedBatchNormKernel>()));
  return RegisterFallible(r, "FusedBatchNormGradV3", BatchNormFactory<FusedBatchNormGradKernel>());
}

}  // namespace gradserve
