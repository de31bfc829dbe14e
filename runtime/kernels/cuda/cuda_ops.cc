// The CUDA device's kernels, float32 (issue 6, first set): MatMul on cuBLAS;
// AddV2, Sub, Mul (same shapes, a vector along the last dimension, or a
// scalar right-hand side), BiasAdd, BiasAddGrad, Relu, ReluGrad and Softmax on
// the kernels of cwise_kernels.cu. Inputs and outputs live on the device; the
// work is queued on the device's stream (nothing here waits for it).
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/cuda/cuda_device.h"
#include "runtime/kernel.h"
#include "runtime/kernels/cuda/cwise_kernels.h"

namespace gradserve {
namespace {

CudaDevice& Gpu(OpKernelContext& ctx) { return *static_cast<CudaDevice*>(ctx.device()); }

// BiasAdd and BiasAddGrad: the CUDA kernels take the channels last.
absl::Status CheckChannelsLast(const Node& node) {
  if (node.op() != "BiasAdd" && node.op() != "BiasAddGrad") return absl::OkStatus();
  const std::string format = node.GetAttr<std::string>("data_format").value_or("NHWC");
  if (format == "NHWC") return absl::OkStatus();
  return absl::UnimplementedError(absl::StrCat(node.name(), ": the CUDA kernel of ", node.op(),
                                               " takes data_format NHWC, not ", format));
}

// Every input is on the kernel's device (placement puts copies in front).
absl::Status CheckOnDevice(const OpKernel& k, OpKernelContext& ctx) {
  GS_RETURN_IF_ERROR(CheckChannelsLast(k.node()));
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    GS_CHECK_ARG(ctx.input(i).device() == ctx.device()->name(), k.name(), ": input ", i,
                 " is on ", ctx.input(i).device(), ", not on ", ctx.device()->name());
  }
  return absl::OkStatus();
}

const float* In(OpKernelContext& ctx, int i) { return ctx.input(i).data<float>(); }

class MatMulKernel final : public OpKernel {
 public:
  explicit MatMulKernel(const Node& node) : OpKernel(node) {
    transpose_a_ = node.GetAttr<bool>("transpose_a").value_or(false);
    transpose_b_ = node.GetAttr<bool>("transpose_b").value_or(false);
  }

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    GS_CHECK_ARG(a.rank() == 2 && b.rank() == 2, name(), ": MatMul takes matrices, got ",
                 a.shape().DebugString(), " and ", b.shape().DebugString());
    const int64_t m = transpose_a_ ? a.dim(1) : a.dim(0);
    const int64_t k = transpose_a_ ? a.dim(0) : a.dim(1);
    const int64_t kb = transpose_b_ ? b.dim(1) : b.dim(0);
    const int64_t n = transpose_b_ ? b.dim(0) : b.dim(1);
    GS_CHECK_ARG(k == kb, name(), ": inner dimensions differ: ", a.shape().DebugString(),
                 transpose_a_ ? "^T" : "", " x ", b.shape().DebugString(),
                 transpose_b_ ? "^T" : "");
    Tensor* out = ctx.allocate_output(0, Shape{m, n}, DType::kFloat);
    if (m == 0 || n == 0) return absl::OkStatus();
    // Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: swap
    // the operands, keep the transposes, leading dimensions = row lengths.
    const float one = 1.f, zero = 0.f;
    CudaDevice& gpu = Gpu(ctx);
    absl::MutexLock lock(&gpu.cublas_mutex());
    return CublasError(
        cublasSgemm(gpu.cublas(), transpose_b_ ? CUBLAS_OP_T : CUBLAS_OP_N,
                    transpose_a_ ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                    static_cast<int>(m), static_cast<int>(k), &one, b.data<float>(),
                    static_cast<int>(b.dim(1)), a.data<float>(), static_cast<int>(a.dim(1)),
                    &zero, out->data<float>(), static_cast<int>(n)),
        absl::StrCat(name(), ": cublasSgemm"));
  }

 private:
  bool transpose_a_ = false, transpose_b_ = false;
};

// AddV2, Sub, Mul; BiasAdd is Add with the bias along the last dimension.
class BinaryKernel final : public OpKernel {
 public:
  BinaryKernel(const Node& node, cuda::BinaryOp op) : OpKernel(node), op_(op) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const bool same = a.shape() == b.shape();
    const bool row = b.rank() == 1 && a.rank() >= 1 && b.dim(0) == a.dim(a.rank() - 1);
    const bool scalar = b.num_elements() == 1 && b.rank() <= a.rank();
    if (!same && !row && !scalar) {
      return absl::UnimplementedError(absl::StrCat(
          name(), ": the CUDA kernel of ", node().op(), " broadcasts only a right-hand side of ",
          "the same shape, a vector along the last dimension or a scalar; got ",
          a.shape().DebugString(), " and ", b.shape().DebugString()));
    }
    Tensor* out = ctx.allocate_output(0, a.shape(), DType::kFloat);
    return CudaError(cuda::LaunchBinary(op_, In(ctx, 0), In(ctx, 1), out->data<float>(),
                                        a.num_elements(), b.num_elements(),
                                        Gpu(ctx).stream()),
                     name());
  }

 private:
  cuda::BinaryOp op_;
};

class ReluKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    Tensor* y = ctx.allocate_output(0, x.shape(), DType::kFloat);
    return CudaError(
        cuda::LaunchRelu(In(ctx, 0), y->data<float>(), x.num_elements(), Gpu(ctx).stream()),
        name());
  }
};

// ReluGrad(gradients, features).
class ReluGradKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& dy = ctx.input(0);
    GS_CHECK_ARG(dy.shape() == ctx.input(1).shape(), name(), ": gradients ",
                 dy.shape().DebugString(), " and features ", ctx.input(1).shape().DebugString(),
                 " differ");
    Tensor* dx = ctx.allocate_output(0, dy.shape(), DType::kFloat);
    return CudaError(cuda::LaunchReluGrad(In(ctx, 0), In(ctx, 1), dx->data<float>(),
                                          dy.num_elements(), Gpu(ctx).stream()),
                     name());
  }
};

// BiasAddGrad (NHWC): the sum over every dimension but the last.
class BiasAddGradKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& dy = ctx.input(0);
    GS_CHECK_ARG(dy.rank() >= 2, name(), ": BiasAddGrad needs rank >= 2, got ",
                 dy.shape().DebugString());
    const int64_t cols = dy.dim(dy.rank() - 1);
    Tensor* db = ctx.allocate_output(0, Shape{cols}, DType::kFloat);
    const int64_t rows = cols > 0 ? dy.num_elements() / cols : 0;
    return CudaError(
        cuda::LaunchColumnSum(In(ctx, 0), db->data<float>(), rows, cols, Gpu(ctx).stream()),
        name());
  }
};

// Softmax along the last dimension.
class SoftmaxKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    GS_CHECK_ARG(x.rank() >= 1, name(), ": Softmax needs rank >= 1");
    const int64_t cols = x.dim(x.rank() - 1);
    Tensor* y = ctx.allocate_output(0, x.shape(), DType::kFloat);
    const int64_t rows = cols > 0 ? x.num_elements() / cols : 0;
    return CudaError(cuda::LaunchSoftmaxRows(In(ctx, 0), y->data<float>(), rows, cols,
                                             Gpu(ctx).stream()),
                     name());
  }
};

template <typename K, typename... Args>
absl::Status RegisterFloat(KernelRegistry& r, std::string op, Args... args) {
  return r.Register(KernelDef{
      .op = std::move(op),
      .device_type = kDeviceCuda,
      .type_attr = "T",
      .types = {DType::kFloat},
      .factory = [args...](const Node& node) -> absl::StatusOr<std::unique_ptr<OpKernel>> {
        return std::unique_ptr<OpKernel>(new K(node, args...));
      }});
}

}  // namespace

const KernelRegistry& CpuAndCudaKernels() {
  static const KernelRegistry* registry = [] {
    auto* r = new KernelRegistry;
    absl::Status status = RegisterCpuKernels(*r);
    if (status.ok()) status = RegisterCudaKernels(*r);
    if (!status.ok()) {
      fprintf(stderr, "kernel registration failed: %s\n", std::string(status.message()).c_str());
      std::abort();
    }
    return r;
  }();
  return *registry;
}

absl::Status RegisterCudaKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterFloat<MatMulKernel>(r, "MatMul"));
  GS_RETURN_IF_ERROR(RegisterFloat<BinaryKernel>(r, "AddV2", cuda::BinaryOp::kAdd));
  GS_RETURN_IF_ERROR(RegisterFloat<BinaryKernel>(r, "Sub", cuda::BinaryOp::kSub));
  GS_RETURN_IF_ERROR(RegisterFloat<BinaryKernel>(r, "Mul", cuda::BinaryOp::kMul));
  GS_RETURN_IF_ERROR(RegisterFloat<BinaryKernel>(r, "BiasAdd", cuda::BinaryOp::kAdd));
  GS_RETURN_IF_ERROR(RegisterFloat<ReluKernel>(r, "Relu"));
  GS_RETURN_IF_ERROR(RegisterFloat<ReluGradKernel>(r, "ReluGrad"));
  GS_RETURN_IF_ERROR(RegisterFloat<BiasAddGradKernel>(r, "BiasAddGrad"));
  GS_RETURN_IF_ERROR(RegisterFloat<SoftmaxKernel>(r, "Softmax"));
  return absl::OkStatus();
}

}  // namespace gradserve
