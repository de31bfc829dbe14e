// The CUDA device's convolutions: Conv2D, Conv2DBackpropInput and
// Conv2DBackpropFilter (float32; NHWC and NCHW; grouped; strides, dilations,
// SAME / VALID / EXPLICIT padding), as im2col + cuBLAS SGEMM, without cuDNN.
// The validation and messages are the CPU kernels' (runtime/kernels/cpu/
// conv_ops.cc, conv_grad_ops.cc), which take NHWC only.
//
// Note [CUDA convolution as GEMM]: as on the CPU (Note [Conv2D as GEMM] and
// Note [Conv2D gradients as GEMM]), with P output pixels per image, K =
// KH*KW*FC patch columns per group and n = OC / groups output channels:
//   y[pixels, n]  = patches[pixels, K] x W[K, n]          (Conv2D)
//   dpatches      = dy[pixels, n] x W^T[n, K], then col2im (BackpropInput)
//   dW[K, n]     += patches^T[K, pixels] x dy[pixels, n]  (BackpropFilter)
// per group, each group's W, y and dy being a column block read in place.
// The patch matrix is built on the device (conv_kernels.cu) in a pool
// temporary, in chunks of rows that keep it under kPatchBytes: whole images
// where one fits, else pieces of one image. col2im gathers (each image value
// sums its own contributions: no atomics) and assigns on an image's first
// chunk, adds on the others; dW's products accumulate with beta = 1. A 1x1
// stride-1 unpadded convolution needs no patches: the image is the patch
// matrix (and dx receives dpatches directly).
//
// Every matrix is a strided View of device memory, so NHWC and NCHW tensors are
// read in place: an NHWC pixel row is contiguous and the rows of consecutive
// images follow on, so a chunk is one GEMM; an NCHW image is [C, P], so a chunk
// of whole images is one strided-batched GEMM (and dW sums one GEMM per image).
#include <algorithm>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/ops/nn_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cuda/conv_kernels.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"

namespace gradserve {
namespace {

using cuda::ConvShape;

// The most bytes of patch matrix a convolution keeps at once.
constexpr int64_t kPatchBytes = int64_t{256} << 20;
constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// A [rows, cols] matrix in device memory: element (r, c) at data[r * rs + c *
// cs]; matrix i of a batch at data + i * batch_stride.
struct View {
  float* data;
  int64_t rs, cs, batch_stride = 0;

  View T() const { return {data, cs, rs, batch_stride}; }
  View Offset(int64_t elements) const { return {data + elements, rs, cs, batch_stride}; }
};

// How cuBLAS (column-major) reads a [rows, cols] view: as it lies (op N) when
// its rows are contiguous, transposed (op T) when its columns are.
struct BlasLayout {
  bool ok = false;
  cublasOperation_t op = CUBLAS_OP_N;
  int64_t ld = 1;
};

BlasLayout LayoutOf(const View& v, int64_t rows, int64_t cols) {
  if (v.rs == 1 && (cols <= 1 || v.cs >= rows)) {
    return {true, CUBLAS_OP_N, cols <= 1 ? std::max<int64_t>(rows, 1) : v.cs};
  }
  if (v.cs == 1 && (rows <= 1 || v.rs >= cols)) {
    return {true, CUBLAS_OP_T, rows <= 1 ? std::max<int64_t>(cols, 1) : v.rs};
  }
  return {};
}

// c = a b + beta c for `batch` matrices (c [m, n], a [m, k], b [k, n], each
// advancing by its batch_stride); beta 0 assigns, 1 accumulates.
absl::Status Gemm(const OpKernel& kernel, CudaDevice& gpu, int64_t m, int64_t n, int64_t k, View a,
                  View b, View c, float beta, int64_t batch = 1) {
  BlasLayout lc = LayoutOf(c, m, n);
  if (!lc.ok || lc.op != CUBLAS_OP_N) {  // c^T = b^T a^T, c^T as it lies
    std::swap(m, n);
    std::swap(a, b);
    a = a.T();
    b = b.T();
    c = c.T();
    lc = LayoutOf(c, m, n);
  }
  const BlasLayout la = LayoutOf(a, m, k), lb = LayoutOf(b, k, n);
  if (!la.ok || !lb.ok || !lc.ok || lc.op != CUBLAS_OP_N) {
    return absl::InternalError(absl::StrCat(kernel.name(), ": a convolution operand is not a ",
                                            "dense matrix (", m, "x", n, "x", k, ")"));
  }
  for (int64_t v : {m, n, k, la.ld, lb.ld, lc.ld, batch}) {
    if (v > kIntMax) {
      return absl::UnimplementedError(absl::StrCat(
          kernel.name(), ": the CUDA convolution's products exceed cuBLAS's int sizes (", m, "x", n,
          "x", k, ")"));
    }
  }
  const float one = 1.f;
  absl::MutexLock lock(&gpu.cublas_mutex());
  cublasStatus_t status;
  if (batch == 1) {
    status = cublasSgemm(gpu.cublas(), la.op, lb.op, static_cast<int>(m), static_cast<int>(n),
                         static_cast<int>(k), &one, a.data, static_cast<int>(la.ld), b.data,
                         static_cast<int>(lb.ld), &beta, c.data, static_cast<int>(lc.ld));
  } else {
    status = cublasSgemmStridedBatched(
        gpu.cublas(), la.op, lb.op, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
        &one, a.data, static_cast<int>(la.ld), a.batch_stride, b.data, static_cast<int>(lb.ld),
        b.batch_stride, &beta, c.data, static_cast<int>(lc.ld), c.batch_stride,
        static_cast<int>(batch));
  }
  return CublasError(status, absl::StrCat(kernel.name(), ": cublasSgemm"));
}

// Rows of the patch matrix handled at once: `images` whole images from b0,
// or `pixels` of image b0 from pixel p0.
struct Chunk {
  int64_t b0, images, p0, pixels;
  int64_t row0(int64_t per_image) const { return b0 * per_image + p0; }
  int64_t rows() const { return images * pixels; }
};

std::vector<Chunk> PlanChunks(const ConvShape& s) {
  const int64_t per_image = s.pixels();
  const int64_t max_rows =
      std::max<int64_t>(1, kPatchBytes / (s.patch_columns() * int64_t{sizeof(float)}));
  std::vector<Chunk> chunks;
  if (per_image <= max_rows) {
    const int64_t step = std::max<int64_t>(1, max_rows / per_image);
    for (int64_t b = 0; b < s.batch; b += step) {
      chunks.push_back({b, std::min(step, s.batch - b), 0, per_image});
    }
    return chunks;
  }
  for (int64_t b = 0; b < s.batch; ++b) {
    for (int64_t p = 0; p < per_image; p += max_rows) {
      chunks.push_back({b, 1, p, std::min(max_rows, per_image - p)});
    }
  }
  return chunks;
}

// An image-shaped tensor ([batch, pixels, channels] as NHWC, [batch, channels,
// pixels] as NCHW) as a [pixels, channels] view per image.
View PixelView(float* data, bool channels_last, int64_t pixels, int64_t channels) {
  return channels_last ? View{data, channels, 1, pixels * channels}
                       : View{data, 1, pixels, pixels * channels};
}

// A pixel view's rows run on from one image into the next (so a chunk of
// whole images is one matrix).
bool RunsOn(const View& v, int64_t per_image) { return v.batch_stride == per_image * v.rs; }

// `chunk`'s part of a pixel view, from channel `channel0`.
View ChunkOf(const View& v, const Chunk& chunk, int64_t channel0) {
  return v.Offset(chunk.b0 * v.batch_stride + chunk.p0 * v.rs + channel0 * v.cs);
}

// A 1x1 stride-1 unpadded convolution: the image is the patch matrix.
bool Pointwise(const ConvShape& s) {
  return s.k_h == 1 && s.k_w == 1 && s.stride_h == 1 && s.stride_w == 1 && s.pad_top == 0 &&
         s.pad_left == 0 && s.out_h == s.in_h && s.out_w == s.in_w;
}

// The convolution of an image of shape `image` by a filter of shape `filter`
// (4-D; depths checked) under `w`; InvalidArgument naming the node as
// ComputeWindowDim fails.
absl::StatusOr<ConvShape> MakeConvShape(const OpKernel& k, const Shape& image, const Shape& filter,
                                        const Window2D& w) {
  ConvShape s{.batch = image.dim(0),
              .in_h = image.dim(w.h_axis()),
              .in_w = image.dim(w.w_axis()),
              .in_c = image.dim(w.c_axis()),
              .k_h = filter.dim(0),
              .k_w = filter.dim(1),
              .group_c = filter.dim(2),
              .out_c = filter.dim(3),
              .stride_h = w.stride[0],
              .stride_w = w.stride[1],
              .dil_h = w.dilation[0],
              .dil_w = w.dilation[1],
              .channels_last = w.channels_last};
  absl::StatusOr<WindowDim> rows =
      ComputeWindowDim(s.in_h, s.k_h, s.dil_h, s.stride_h, w.padding, w.pad[0]);
  absl::StatusOr<WindowDim> cols =
      ComputeWindowDim(s.in_w, s.k_w, s.dil_w, s.stride_w, w.padding, w.pad[1]);
  for (const auto* d : {&rows, &cols}) {
    GS_CHECK_ARG(d->ok(), k.name(), ": ", d->status().message());
  }
  s.out_h = rows->output;
  s.out_w = cols->output;
  s.pad_top = rows->pad_before;
  s.pad_left = cols->pad_before;
  return s;
}

Shape OutputShape(const ConvShape& s) {
  return s.channels_last ? Shape{s.batch, s.out_h, s.out_w, s.out_c}
                         : Shape{s.batch, s.out_c, s.out_h, s.out_w};
}

// The depth checks shared by the three ops (the CPU kernels' messages).
absl::Status CheckDepths(const OpKernel& k, int64_t in_c, int64_t group_c, int64_t out_c) {
  GS_CHECK_ARG(group_c > 0 && in_c % group_c == 0, k.name(), ": depth of input (", in_c,
               ") is not a multiple of input depth of filter (", group_c, ")");
  const int64_t groups = in_c / group_c;
  GS_CHECK_ARG(groups > 0 && out_c % groups == 0, k.name(), ": depth of output (", out_c,
               ") is not a multiple of the number of groups (", groups, ")");
  return absl::OkStatus();
}

absl::Status Zero(const OpKernel& k, OpKernelContext& ctx, Tensor* t) {
  return LaunchStatus(k, cudaMemsetAsync(t->raw_data(), 0, t->bytes(), Gpu(ctx).stream()));
}

// The filter's group g as a [K, n] view, in place.
View FilterView(float* w, const ConvShape& s, int64_t g) {
  const int64_t n = s.out_c / s.groups();
  return View{w + g * n, s.out_c, 1, 0};
}

// The patch matrix of a chunk: the pool temporary `patches` after im2col, or
// the image itself for a pointwise convolution. Views start at group 0.
View PatchView(const ConvShape& s, float* image, float* patches, const Chunk& chunk) {
  if (Pointwise(s)) {
    return ChunkOf(PixelView(image, s.channels_last, s.pixels(), s.in_c), chunk, 0);
  }
  return View{patches, s.patch_columns(), 1, s.pixels() * s.patch_columns()};
}

// Group g's columns of a patch view.
View PatchGroup(const ConvShape& s, const View& patches, int64_t g) {
  return patches.Offset(g * (Pointwise(s) ? s.group_c : s.patch_size()) * patches.cs);
}

// A pool temporary for one chunk's patch matrix (none when pointwise).
Tensor PatchBuffer(OpKernelContext& ctx, const ConvShape& s, const std::vector<Chunk>& chunks) {
  int64_t rows = 0;
  for (const Chunk& c : chunks) rows = std::max(rows, c.rows());
  if (Pointwise(s)) rows = 0;
  return Tensor(ctx.device()->allocator(), DType::kFloat, Shape{rows, s.patch_columns()});
}

// y = conv(x, W); see Note [CUDA convolution as GEMM].
absl::Status RunConv(const OpKernel& k, OpKernelContext& ctx, const ConvShape& s, float* x,
                     float* w, float* y) {
  CudaDevice& gpu = Gpu(ctx);
  const int64_t per_image = s.pixels(), n = s.out_c / s.groups();
  const std::vector<Chunk> chunks = PlanChunks(s);
  Tensor patches = PatchBuffer(ctx, s, chunks);
  const View out = PixelView(y, s.channels_last, per_image, s.out_c);
  for (const Chunk& c : chunks) {
    if (!Pointwise(s)) {
      GS_RETURN_IF_ERROR(LaunchStatus(k, cuda::LaunchIm2Col(s, x, c.row0(per_image), c.rows(),
                                                            patches.data<float>(), gpu.stream())));
    }
    const View p = PatchView(s, x, patches.data<float>(), c);
    const bool flat = c.images == 1 || (RunsOn(p, per_image) && RunsOn(out, per_image));
    for (int64_t g = 0; g < s.groups(); ++g) {
      GS_RETURN_IF_ERROR(Gemm(k, gpu, flat ? c.rows() : c.pixels, n, s.patch_size(),
                              PatchGroup(s, p, g), FilterView(w, s, g), ChunkOf(out, c, g * n), 0.f,
                              flat ? 1 : c.images));
    }
  }
  return absl::OkStatus();
}

// dx from W and dy; see Note [CUDA convolution as GEMM].
absl::Status RunBackpropInput(const OpKernel& k, OpKernelContext& ctx, const ConvShape& s, float* w,
                              float* dy, float* dx) {
  CudaDevice& gpu = Gpu(ctx);
  const int64_t per_image = s.pixels(), n = s.out_c / s.groups();
  const std::vector<Chunk> chunks = PlanChunks(s);
  Tensor dpatches = PatchBuffer(ctx, s, chunks);
  const View grad = PixelView(dy, s.channels_last, per_image, s.out_c);
  for (const Chunk& c : chunks) {
    const View p = PatchView(s, dx, dpatches.data<float>(), c);
    const bool flat = c.images == 1 || (RunsOn(p, per_image) && RunsOn(grad, per_image));
    for (int64_t g = 0; g < s.groups(); ++g) {
      GS_RETURN_IF_ERROR(Gemm(k, gpu, flat ? c.rows() : c.pixels, s.patch_size(), n,
                              ChunkOf(grad, c, g * n), FilterView(w, s, g).T(), PatchGroup(s, p, g),
                              0.f, flat ? 1 : c.images));
    }
    if (!Pointwise(s)) {
      GS_RETURN_IF_ERROR(LaunchStatus(
          k, cuda::LaunchCol2Im(s, dpatches.data<float>(), c.row0(per_image), c.rows(), dx,
                                /*accumulate=*/c.p0 > 0, gpu.stream())));
    }
  }
  return absl::OkStatus();
}

// dW from x and dy; see Note [CUDA convolution as GEMM].
absl::Status RunBackpropFilter(const OpKernel& k, OpKernelContext& ctx, const ConvShape& s,
                               float* x, float* dy, float* dw) {
  CudaDevice& gpu = Gpu(ctx);
  const int64_t per_image = s.pixels(), n = s.out_c / s.groups();
  const std::vector<Chunk> chunks = PlanChunks(s);
  Tensor patches = PatchBuffer(ctx, s, chunks);
  const View grad = PixelView(dy, s.channels_last, per_image, s.out_c);
  bool first = true;  // the first product assigns dW, the others add
  for (const Chunk& c : chunks) {
    if (!Pointwise(s)) {
      GS_RETURN_IF_ERROR(LaunchStatus(k, cuda::LaunchIm2Col(s, x, c.row0(per_image), c.rows(),
                                                            patches.data<float>(), gpu.stream())));
    }
    const View p = PatchView(s, x, patches.data<float>(), c);
    const bool flat = c.images == 1 || (RunsOn(p, per_image) && RunsOn(grad, per_image));
    // The sum runs over pixels: one product over the chunk's rows, or one per image.
    const int64_t parts = flat ? 1 : c.images, rows = flat ? c.rows() : c.pixels;
    for (int64_t i = 0; i < parts; ++i) {
      for (int64_t g = 0; g < s.groups(); ++g) {
        const View pg = PatchGroup(s, p, g).Offset(i * p.batch_stride);
        const View dyg = ChunkOf(grad, c, g * n).Offset(i * grad.batch_stride);
        GS_RETURN_IF_ERROR(Gemm(k, gpu, s.patch_size(), n, rows, pg.T(), dyg, FilterView(dw, s, g),
                                first ? 0.f : 1.f));
      }
      first = false;
    }
  }
  return absl::OkStatus();
}

class Conv2DKernel final : public OpKernel {
 public:
  Conv2DKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& input = ctx.input(0);
    const Tensor& filter = ctx.input(1);
    GS_CHECK_ARG(input.rank() == 4, name(), ": input must be 4-dimensional, got ",
                 input.shape().DebugString());
    GS_CHECK_ARG(filter.rank() == 4, name(), ": filter must be 4-dimensional, got ",
                 filter.shape().DebugString());
    GS_CHECK_ARG(filter.num_elements() > 0, name(), ": filter must not have zero elements, got ",
                 filter.shape().DebugString());
    GS_RETURN_IF_ERROR(CheckDepths(*this, input.dim(w_.c_axis()), filter.dim(2), filter.dim(3)));
    GS_ASSIGN_OR_RETURN(ConvShape s, MakeConvShape(*this, input.shape(), filter.shape(), w_));
    Tensor* out = ctx.allocate_output(0, OutputShape(s), DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    return RunConv(*this, ctx, s, input.data<float>(), filter.data<float>(), out->data<float>());
  }

 private:
  Window2D w_;
};

// Conv2DBackpropInput(input_sizes, filter, out_backprop) when kInput, else
// Conv2DBackpropFilter(input, filter_sizes, out_backprop); the sizes are in
// host memory.
template <bool kInput>
class ConvBackpropKernel final : public OpKernel {
 public:
  ConvBackpropKernel(const Node& node, const Window2D& window) : OpKernel(node), w_(window) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const int sizes_index = kInput ? 0 : 1;
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {sizes_index}));
    const Tensor& sizes = ctx.input(sizes_index);
    const char* sizes_name = kInput ? "input_sizes" : "filter_sizes";
    GS_CHECK_ARG(sizes.rank() == 1 && sizes.num_elements() == 4, name(), ": ", sizes_name,
                 " must be a vector of 4 elements, got ", sizes.shape().DebugString());
    GS_CHECK_ARG(sizes.dtype() == DType::kInt32 && sizes.host_accessible(), name(), ": ",
                 sizes_name, " must be int32 in host memory");
    Shape given;
    for (int i = 0; i < 4; ++i) {
      const int64_t d = sizes.data<int32_t>()[i];
      GS_CHECK_ARG(d >= 0, name(), ": ", sizes_name, " must not be negative, got ", d);
      given.AddDim(d);
    }
    const Shape in_shape = kInput ? given : ctx.input(0).shape();
    const Shape f_shape = kInput ? ctx.input(1).shape() : given;
    const Tensor& dy = ctx.input(2);
    GS_CHECK_ARG(in_shape.rank() == 4 && f_shape.rank() == 4, name(),
                 ": input and filter must be 4-D, got ", in_shape.DebugString(), " and ",
                 f_shape.DebugString());
    GS_RETURN_IF_ERROR(
        CheckDepths(*this, in_shape.dim(w_.c_axis()), f_shape.dim(2), f_shape.dim(3)));
    GS_ASSIGN_OR_RETURN(ConvShape s, MakeConvShape(*this, in_shape, f_shape, w_));
    const Shape out_shape = OutputShape(s);
    GS_CHECK_ARG(dy.shape() == out_shape, name(), ": out_backprop must have shape ",
                 out_shape.DebugString(), ", got ", dy.shape().DebugString());
    Tensor* out = ctx.allocate_output(0, kInput ? in_shape : f_shape, DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    // Nothing flows back (an empty filter, or no output pixels): an empty sum.
    if (f_shape.num_elements() == 0 || dy.num_elements() == 0) return Zero(*this, ctx, out);
    const Tensor& other = ctx.input(kInput ? 1 : 0);  // the filter, or the input
    if constexpr (kInput) {
      return RunBackpropInput(*this, ctx, s, other.data<float>(), dy.data<float>(),
                              out->data<float>());
    } else {
      return RunBackpropFilter(*this, ctx, s, other.data<float>(), dy.data<float>(),
                               out->data<float>());
    }
  }

 private:
  Window2D w_;
};

// Registers K(node, window) for float32, the window attrs parsed once per node
// (bad attrs fail kernel creation, as on the CPU).
template <typename K>
absl::Status RegisterConv(KernelRegistry& r, std::string op, HostMemory host = {}) {
  return r.Register(
      KernelDef{.op = std::move(op),
                .device_type = kDeviceCuda,
                .type_attr = "T",
                .types = {DType::kFloat},
                .factory = [](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
                  GS_ASSIGN_OR_RETURN(Window2D w, ParseWindow2D(node, /*conv=*/true));
                  return std::unique_ptr<OpKernel>(new K(node, w));
                },
                .host_memory_inputs = std::move(host.inputs),
                .host_memory_outputs = std::move(host.outputs)});
}

}  // namespace

absl::Status RegisterCudaNnKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterConv<Conv2DKernel>(r, "Conv2D"));
  GS_RETURN_IF_ERROR(
      RegisterConv<ConvBackpropKernel<true>>(r, "Conv2DBackpropInput", {.inputs = {0}}));
  GS_RETURN_IF_ERROR(
      RegisterConv<ConvBackpropKernel<false>>(r, "Conv2DBackpropFilter", {.inputs = {1}}));
  return absl::OkStatus();
}

}  // namespace gradserve
