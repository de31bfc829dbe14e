// The CUDA device's element-wise kernels: float32, and bool where an op's
// output or inputs are bool (comparisons, LogicalAnd, SelectV2's condition,
// Cast from bool).
//
// The unary, binary and comparison kernels are cwise.h's device-generic kernel
// classes with the CudaCwise policy (Note [Device-generic element-wise
// kernels]): validation, errors, output forwarding and the broadcast plan are
// the CPU kernels' own. BiasAdd, AddN, SelectV2, Cast, Fill, ZerosLike and
// OnesLike mirror their CPU kernels' checks here and evaluate the same cores of
// cwise_functors.h through the launchers of cwise_kernels.h.
#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "graph/ops/array_ops.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"
#include "runtime/kernels/cpu/cwise.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/cwise_kernels.h"
#include "runtime/kernels/reduction_util.h"

namespace gradserve {
namespace {

// Evaluates on the GPU's stream (Note [Device-generic element-wise kernels]).
// One-element operands are broadcast on the device, never read on the host.
struct CudaCwise {
  static absl::Status Prepare(const OpKernel& k, OpKernelContext& ctx) {
    return CheckOnDevice(k, ctx);
  }
  template <typename T, typename F, typename Out>
  static absl::Status Unary(const OpKernel& k, OpKernelContext& ctx, const T* x, Out* y,
                            int64_t n) {
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(k,
                        cuda::UnaryLauncher<F, T, Out>::Run(x, y, n, gpu.stream(), gpu.ordinal()));
  }
  template <typename T, typename F, typename Out>
  static absl::Status Binary(const OpKernel& k, OpKernelContext& ctx, const T* x, const T* y,
                             Out* z, int64_t n) {
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(
        k, cuda::BinaryLauncher<F, T, Out>::Same(x, y, z, n, gpu.stream(), gpu.ordinal()));
  }
  template <typename T, typename F, typename Out>
  static absl::Status Broadcast(const OpKernel& k, OpKernelContext& ctx, const T* x, const T* y,
                                Out* z, const BroadcastDims& b) {
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(
        k, cuda::BinaryLauncher<F, T, Out>::Broadcast(x, y, z, b, gpu.stream(), gpu.ordinal()));
  }
  template <typename T>
  static absl::Status Fill(const OpKernel& k, OpKernelContext& ctx, T* out, int64_t n, T value) {
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(k, cuda::LaunchFill<T>(out, n, value, gpu.stream(), gpu.ordinal()));
  }
};

template <typename F>
using Unary = UnaryKernel<float, F, float, CudaCwise>;
template <typename F>
using Binary = BinaryKernel<float, F, float, CudaCwise>;
template <typename F>
using Compare = BinaryKernel<float, F, bool, CudaCwise>;
using Equal = EqualKernel<float, CudaCwise>;
using LogicalAnd = BinaryKernel<bool, functor::LogicalAndFn, bool, CudaCwise>;

// value + bias along the channel axis (the CPU's BiasAdd): value viewed as
// [outer, channels, inner] plus bias viewed as [channels, 1], broadcast
// (NHWC: inner = 1; NCHW: inner = the spatial size).
class BiasAddKernel final : public OpKernel {
 public:
  explicit BiasAddKernel(const Node& node) : OpKernel(node), nchw_(DataFormatIsNchw(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& value = ctx.input(0);
    const Tensor& bias = ctx.input(1);
    GS_ASSIGN_OR_RETURN(const AxisSplit split, BiasAddSplit(value.shape(), bias.shape(), nchw_));
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, value.shape(), DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    const Shape view{split.outer, split.size, split.inner}, bias_view{split.size, 1};
    BroadcastDims dims;
    if (!CollapseBroadcast({&view, &bias_view}, view, &dims)) {
      return absl::InternalError(absl::StrCat(name(), ": a bias broadcast exceeds rank 3"));
    }
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(*this, cuda::BinaryLauncher<functor::AddFn, float>::Broadcast(
                                   value.data<float>(), bias.data<float>(), out->data<float>(),
                                   dims, gpu.stream(), gpu.ordinal()));
  }

 private:
  bool nchw_;
};

// AddN: the element-wise sum of N same-shaped tensors, in input order.
class AddNKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& first = ctx.input(0);
    for (int i = 1; i < ctx.num_inputs(); ++i) {
      GS_CHECK_ARG(ctx.input(i).shape() == first.shape(), "input ", i, " has shape ",
                   ctx.input(i).shape().DebugString(), " but input 0 has ",
                   first.shape().DebugString());
    }
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, first.shape(), DType::kFloat);
    absl::InlinedVector<const float*, 8> inputs;
    for (int i = 0; i < ctx.num_inputs(); ++i) inputs.push_back(ctx.input(i).data<float>());
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(*this, cuda::LaunchAddN(inputs.data(), ctx.num_inputs(), out->data<float>(),
                                                first.num_elements(), gpu.stream(), gpu.ordinal()));
  }
};

// SelectV2(condition, t, e) with NumPy broadcasting of the three (the CPU's
// checks and errors; beyond kMaxBroadcastRank collapsed dims, Unimplemented).
class SelectV2Kernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor &cond = ctx.input(0), &t = ctx.input(1), &e = ctx.input(2);
    GS_ASSIGN_OR_RETURN(Shape out_shape, array_shape::SelectV2(cond.shape(), t.shape(), e.shape()));
    Tensor* out = ctx.allocate_output(0, out_shape, DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    const CudaDevice& gpu = Gpu(ctx);
    if (cond.shape() == out_shape && t.shape() == out_shape && e.shape() == out_shape) {
      return LaunchStatus(
          *this, cuda::LaunchSelect(cond.data<bool>(), t.data<float>(), e.data<float>(),
                                    out->data<float>(), out->num_elements(), nullptr, gpu.stream(),
                                    gpu.ordinal()));
    }
    BroadcastDims dims;
    if (!CollapseBroadcast({&cond.shape(), &t.shape(), &e.shape()}, out_shape, &dims)) {
      return absl::UnimplementedError(
          absl::StrCat(name(), ": the CUDA kernel of SelectV2 broadcasts up to ", kMaxBroadcastRank,
                       " collapsed dimensions; condition ", cond.shape().DebugString(), ", then ",
                       t.shape().DebugString(), ", else ", e.shape().DebugString()));
    }
    return LaunchStatus(
        *this,
        cuda::LaunchSelect(cond.data<bool>(), t.data<float>(), e.data<float>(), out->data<float>(),
                           out->num_elements(), &dims, gpu.stream(), gpu.ordinal()));
  }
};

// Cast from SrcT (float or bool) to DstT, chosen once per node as on the CPU.
using CastFn = cudaError_t (*)(const Tensor& x, Tensor* y, bool truncate, cudaStream_t stream,
                               int ordinal);

template <typename In, typename Out>
cudaError_t CastOnGpu(const Tensor& x, Tensor* y, bool truncate, cudaStream_t stream, int ordinal) {
  return cuda::CastLauncher<In, Out>::Run(x.data<In>(), y->data<Out>(), x.num_elements(), truncate,
                                          stream, ordinal);
}

class CastKernel final : public OpKernel {
 public:
  // fn == nullptr: SrcT == DstT, the output is the input.
  CastKernel(const Node& node, DType dst, bool truncate, CastFn fn)
      : OpKernel(node), dst_(dst), truncate_(truncate), fn_(fn) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    if (fn_ == nullptr) {
      ctx.set_output(0, x);
      return absl::OkStatus();
    }
    Tensor* y = ctx.allocate_output(0, x.shape(), dst_);
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(*this, fn_(x, y, truncate_, gpu.stream(), gpu.ordinal()));
  }

 private:
  DType dst_;
  bool truncate_;
  CastFn fn_;
};

// Note: SrcT selects the kernel, as on the CPU, so the GPU holds only casts
// from float and bool (to every dtype); integer-to-integer casts (shape
// arithmetic) stay on the CPU, and so, for now, do integer-to-float casts.
absl::Status RegisterCast(KernelRegistry& r) {
  return RegisterTyped(
      r, "Cast", TypeList<float, bool>{},
      []<typename In>(const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        GS_ASSIGN_OR_RETURN(DType dst, node.GetAttr<DType>("DstT"));
        GS_ASSIGN_OR_RETURN(bool truncate, node.GetAttr<bool>("Truncate"));
        CastFn fn = nullptr;
        GS_RETURN_IF_ERROR(DispatchDType(dst, [&]<typename Out>() -> absl::Status {
          if constexpr (!std::is_same_v<In, Out>) fn = &CastOnGpu<In, Out>;
          return absl::OkStatus();
        }));
        return std::unique_ptr<OpKernel>(new CastKernel(node, dst, truncate, fn));
      },
      "SrcT", kDeviceCuda);
}

// Fill(dims, value): dims in host memory (read here, checked as on the CPU),
// value one float on the GPU, broadcast there.
class FillKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {0}));
    const Tensor& dims = ctx.input(0);
    const Tensor& value = ctx.input(1);
    GS_ASSIGN_OR_RETURN(Shape shape,
                        array_shape::Fill(dims.shape(), ReadInts(dims), value.shape()));
    Tensor* out = ctx.allocate_output(0, shape, DType::kFloat);
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(
        *this, cuda::LaunchFillFromScalar(value.data<float>(), out->data<float>(),
                                          out->num_elements(), gpu.stream(), gpu.ordinal()));
  }
};

// ZerosLike (kOne = false) and OnesLike (kOne = true).
template <bool kOne>
class FillLikeKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    Tensor* out = ctx.forward_input_or_allocate_output(0, 0, x.shape(), DType::kFloat);
    const CudaDevice& gpu = Gpu(ctx);
    return LaunchStatus(
        *this, cuda::LaunchFill<float>(out->data<float>(), out->num_elements(), kOne ? 1.f : 0.f,
                                       gpu.stream(), gpu.ordinal()));
  }
};

}  // namespace

absl::Status RegisterCudaCwiseKernels(KernelRegistry& r) {
  // Unary math and activations.
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::AbsFn>>(r, "Abs"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::NegFn>>(r, "Neg"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::ExpFn>>(r, "Exp"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::LogFn>>(r, "Log"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::SqrtFn>>(r, "Sqrt"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::RsqrtFn>>(r, "Rsqrt"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::SquareFn>>(r, "Square"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::SigmoidFn>>(r, "Sigmoid"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::TanhFn>>(r, "Tanh"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::ReluFn>>(r, "Relu"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::Relu6Fn>>(r, "Relu6"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Unary<functor::EluFn>>(r, "Elu"));
  // Binary arithmetic and activation gradients, NumPy broadcasting.
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::AddFn>>(r, "Add"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::AddFn>>(r, "AddV2"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::SubFn>>(r, "Sub"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::MulFn>>(r, "Mul"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::DivFn>>(r, "RealDiv"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::MaxFn>>(r, "Maximum"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::MinFn>>(r, "Minimum"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::PowFn>>(r, "Pow"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::ReluGradFn>>(r, "ReluGrad"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::Relu6GradFn>>(r, "Relu6Grad"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::EluGradFn>>(r, "EluGrad"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::SigmoidGradFn>>(r, "SigmoidGrad"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Binary<functor::TanhGradFn>>(r, "TanhGrad"));
  // Comparisons (bool outputs) and logic (bool in and out, no type attr).
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Equal>(r, "Equal"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Compare<functor::LessFn>>(r, "Less"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<Compare<functor::GreaterFn>>(r, "Greater"));
  GS_RETURN_IF_ERROR(RegisterUntyped<LogicalAnd>(r, "LogicalAnd", kDeviceCuda));
  // The rest of the element-wise family.
  GS_RETURN_IF_ERROR(RegisterCudaFloat<BiasAddKernel>(r, "BiasAdd"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<AddNKernel>(r, "AddN"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<SelectV2Kernel>(r, "SelectV2"));
  GS_RETURN_IF_ERROR(RegisterCast(r));
  GS_RETURN_IF_ERROR(RegisterCuda<FillKernel>(r, "Fill", {DType::kFloat}, "T", {.inputs = {0}}));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<FillLikeKernel<false>>(r, "ZerosLike"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<FillLikeKernel<true>>(r, "OnesLike"));
  return absl::OkStatus();
}

}  // namespace gradserve
