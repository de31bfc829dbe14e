// The CUDA device's matrix products, MatMul and BatchMatMulV2 (float32), on
// cuBLAS in the device's MatMulPrecision (runtime/device.h).
//
// Note [Row-major products on cuBLAS]: cuBLAS is column-major, and a row-major
// matrix read column-major is its transpose, so row-major C = op(A) op(B) is
// computed as column-major C^T = op(B)^T op(A)^T: the operands swap places,
// keep their transposes, and each leading dimension is a row length.
//
// Note [Reduced-precision products]: under kBFloat16 and kFloat16 both operands
// are rounded to the 16-bit type on the device, into pool temporaries that are
// freed stream-ordered once Compute returns (after the product on the stream),
// and multiplied by cublasGemm(StridedBatched)Ex with float32 accumulation
// (CUBLAS_COMPUTE_32F) and a float32 result. kFloat32 and kTf32 are
// cublasSgemm under the handle's math mode (pedantic IEEE, or TF32).
//
// Note [Broadcast batches]: BatchMatMulV2's output batch is walked as an inner
// block of batch dimensions that is one strided-batched call (the operand
// strides are affine in the block's flat index: equal batch dimensions, or one
// side broadcast, stride 0) and an outer host loop over what is left (rare
// patterns such as x [4,1] against y [1,5]: one call per x matrix).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/cuda/matmul_kernels.h"
#include "runtime/kernels/matmul_util.h"

namespace gradserve {
namespace {

constexpr int64_t kIntMax = std::numeric_limits<int>::max();

// One operand as cuBLAS reads it: the float32 input, or its 16-bit copy.
struct Operand {
  const void* data = nullptr;
  cudaDataType type = CUDA_R_32F;
  int64_t element_bytes = 4;
  Tensor narrowed;  // owns the 16-bit copy

  const void* At(int64_t offset) const {
    return static_cast<const char*>(data) + offset * element_bytes;
  }
};

// `t` as the product reads it in the device's precision (Note [Reduced-precision
// products]).
absl::StatusOr<Operand> Prepare(const OpKernel& k, OpKernelContext& ctx, const Tensor& t) {
  const MatMulPrecision p = Gpu(ctx).matmul_precision();
  Operand op;
  op.data = t.data<float>();
  if (p != MatMulPrecision::kBFloat16 && p != MatMulPrecision::kFloat16) return op;
  const bool bf16 = p == MatMulPrecision::kBFloat16;
  op.narrowed =
      Tensor(ctx.device()->allocator(), bf16 ? DType::kBFloat16 : DType::kHalf, t.shape());
  GS_RETURN_IF_ERROR(LaunchStatus(
      k, cuda::LaunchNarrowFloats(bf16 ? cuda::NarrowType::kBFloat16 : cuda::NarrowType::kFloat16,
                                  t.data<float>(), op.narrowed.raw_data(), t.num_elements(),
                                  Gpu(ctx).stream())));
  op.data = op.narrowed.raw_data();
  op.type = bf16 ? CUDA_R_16BF : CUDA_R_16F;
  op.element_bytes = 2;
  return op;
}

// The sizes of one product: row-major C [m, n] = op(A) [m, k] x op(B) [k, n].
struct GemmShape {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
};

// C[i] = op(A[i]) op(B[i]) for i < batch, A[i] at a_offset + i * a_stride
// elements (likewise B), C[i] at c + i * m * n; stride 0 repeats a matrix.
// Requires m, n, k >= 1 and below 2^31 (checked by the callers).
absl::Status BatchedGemm(const OpKernel& kernel, CudaDevice& gpu, const GemmShape& s,
                         const Operand& a, int64_t a_offset, int64_t a_stride, const Operand& b,
                         int64_t b_offset, int64_t b_stride, float* c, int64_t batch)
    ABSL_EXCLUSIVE_LOCKS_REQUIRED(gpu.cublas_mutex()) {
  // Note [Row-major products on cuBLAS]: cuBLAS's A is our B and vice versa.
  const cublasOperation_t op_b = s.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_a = s.ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int m = static_cast<int>(s.m), n = static_cast<int>(s.n), k = static_cast<int>(s.k);
  const int ldb = static_cast<int>(s.tb ? s.k : s.n), lda = static_cast<int>(s.ta ? s.m : s.k);
  const float one = 1.f, zero = 0.f;
  for (int64_t done = 0; done < batch; done += kIntMax) {
    const int count = static_cast<int>(std::min(batch - done, kIntMax));
    const void* pa = a.At(a_offset + done * a_stride);
    const void* pb = b.At(b_offset + done * b_stride);
    float* pc = c + done * s.m * s.n;
    cublasStatus_t status;
    if (a.type == CUDA_R_32F && count == 1) {
      status = cublasSgemm(gpu.cublas(), op_b, op_a, n, m, k, &one, static_cast<const float*>(pb),
                           ldb, static_cast<const float*>(pa), lda, &zero, pc, n);
    } else if (a.type == CUDA_R_32F) {
      status = cublasSgemmStridedBatched(
          gpu.cublas(), op_b, op_a, n, m, k, &one, static_cast<const float*>(pb), ldb, b_stride,
          static_cast<const float*>(pa), lda, a_stride, &zero, pc, n, s.m * s.n, count);
    } else if (count == 1) {
      status = cublasGemmEx(gpu.cublas(), op_b, op_a, n, m, k, &one, pb, b.type, ldb, pa, a.type,
                            lda, &zero, pc, CUDA_R_32F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    } else {
      status =
          cublasGemmStridedBatchedEx(gpu.cublas(), op_b, op_a, n, m, k, &one, pb, b.type, ldb,
                                     b_stride, pa, a.type, lda, a_stride, &zero, pc, CUDA_R_32F, n,
                                     s.m * s.n, count, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    }
    GS_RETURN_IF_ERROR(CublasError(status, absl::StrCat(kernel.name(), ": cuBLAS product of ", s.m,
                                                        "x", s.k, " by ", s.k, "x", s.n)));
  }
  return absl::OkStatus();
}

// InvalidArgument unless cuBLAS's int sizes hold the product.
absl::Status CheckIntSizes(const OpKernel& k, const GemmShape& s) {
  GS_CHECK_ARG(s.m <= kIntMax && s.n <= kIntMax && s.k <= kIntMax, k.name(),
               ": the CUDA kernel multiplies matrices of at most 2^31-1 rows and columns, got ",
               s.m, "x", s.k, " by ", s.k, "x", s.n);
  return absl::OkStatus();
}

// Zeros `out` (an empty sum, k = 0).
absl::Status Zero(const OpKernel& k, OpKernelContext& ctx, Tensor* out) {
  return LaunchStatus(k, cudaMemsetAsync(out->raw_data(), 0, out->bytes(), Gpu(ctx).stream()));
}

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
    GS_CHECK_ARG(a.rank() == 2 && b.rank() == 2, name(), ": MatMul needs matrices, got ",
                 a.shape().DebugString(), " and ", b.shape().DebugString());
    GemmShape s{.ta = transpose_a_,
                .tb = transpose_b_,
                .m = transpose_a_ ? a.dim(1) : a.dim(0),
                .n = transpose_b_ ? b.dim(0) : b.dim(1),
                .k = transpose_a_ ? a.dim(0) : a.dim(1)};
    const int64_t kb = transpose_b_ ? b.dim(1) : b.dim(0);
    GS_CHECK_ARG(s.k == kb, name(), ": inner dimensions differ: ", a.shape().DebugString(),
                 transpose_a_ ? "^T" : "", " x ", b.shape().DebugString(),
                 transpose_b_ ? "^T" : "");
    Tensor* out = ctx.allocate_output(0, Shape{s.m, s.n}, DType::kFloat);
    if (s.m == 0 || s.n == 0) return absl::OkStatus();
    if (s.k == 0) return Zero(*this, ctx, out);
    GS_RETURN_IF_ERROR(CheckIntSizes(*this, s));
    GS_ASSIGN_OR_RETURN(Operand pa, Prepare(*this, ctx, a));
    GS_ASSIGN_OR_RETURN(Operand pb, Prepare(*this, ctx, b));
    CudaDevice& gpu = Gpu(ctx);
    absl::MutexLock lock(&gpu.cublas_mutex());
    return BatchedGemm(*this, gpu, s, pa, 0, 0, pb, 0, 0, out->data<float>(), 1);
  }

 private:
  bool transpose_a_ = false, transpose_b_ = false;
};

// The walk of Note [Broadcast batches]: `inner` output matrices per call, x
// and y advancing by x_stride and y_stride matrices within it; the outer
// dimensions (outermost first) with the operands' matrix strides along them.
struct BatchPlan {
  int64_t inner = 1, x_stride = 0, y_stride = 0;
  std::vector<int64_t> outer_dims, outer_x, outer_y;
};

// x's and y's batch dimensions broadcast to `batch` (validated).
BatchPlan PlanBatches(const Shape& xb, const Shape& yb, const Shape& batch) {
  const int rank = batch.rank();
  // Matrix strides along each output batch dimension, 0 where broadcast;
  // dimensions of size 1 are dropped (they move nothing).
  std::vector<int64_t> dims, xs, ys;
  int64_t x_step = 1, y_step = 1;
  for (int d = rank - 1; d >= 0; --d) {
    const int dx = xb.rank() - rank + d, dy = yb.rank() - rank + d;
    const int64_t xd = dx >= 0 ? xb.dim(dx) : 1, yd = dy >= 0 ? yb.dim(dy) : 1;
    if (batch.dim(d) != 1) {
      dims.insert(dims.begin(), batch.dim(d));
      xs.insert(xs.begin(), xd == 1 ? 0 : x_step);
      ys.insert(ys.begin(), yd == 1 ? 0 : y_step);
    }
    x_step *= xd;
    y_step *= yd;
  }
  BatchPlan plan;
  int i = static_cast<int>(dims.size()) - 1;
  if (i >= 0) {
    plan.inner = dims[i];
    plan.x_stride = xs[i];
    plan.y_stride = ys[i];
    --i;
  }
  // Merge outward while both operands stay affine in the block's flat index.
  while (i >= 0 && xs[i] == plan.x_stride * plan.inner && ys[i] == plan.y_stride * plan.inner) {
    plan.inner *= dims[i];
    --i;
  }
  plan.outer_dims.assign(dims.begin(), dims.begin() + (i + 1));
  plan.outer_x.assign(xs.begin(), xs.begin() + (i + 1));
  plan.outer_y.assign(ys.begin(), ys.begin() + (i + 1));
  return plan;
}

class BatchMatMulKernel final : public OpKernel {
 public:
  explicit BatchMatMulKernel(const Node& node)
      : OpKernel(node), adj_(BatchMatMulAdjointsOf(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx));
    const Tensor& x = ctx.input(0);
    const Tensor& y = ctx.input(1);
    absl::StatusOr<BatchMatMulSizes> shape = CheckBatchMatMul(x.shape(), y.shape(), adj_);
    if (!shape.ok()) return Annotate(shape.status(), name());
    const GemmShape s{
        .ta = adj_.adj_x, .tb = adj_.adj_y, .m = shape->m, .n = shape->n, .k = shape->k};
    Tensor* out = ctx.allocate_output(0, shape->out, DType::kFloat);
    if (out->num_elements() == 0) return absl::OkStatus();
    if (s.k == 0) return Zero(*this, ctx, out);
    GS_RETURN_IF_ERROR(CheckIntSizes(*this, s));
    GS_ASSIGN_OR_RETURN(Operand px, Prepare(*this, ctx, x));
    GS_ASSIGN_OR_RETURN(Operand py, Prepare(*this, ctx, y));
    const BatchPlan plan = PlanBatches(shape->x_batch, shape->y_batch, shape->batch);
    const int64_t x_size = s.m * s.k, y_size = s.k * s.n, out_size = s.m * s.n;
    int64_t outer = 1;
    for (int64_t d : plan.outer_dims) outer *= d;
    CudaDevice& gpu = Gpu(ctx);
    absl::MutexLock lock(&gpu.cublas_mutex());
    for (int64_t o = 0; o < outer; ++o) {
      // The outer index's matrix offsets in x and y.
      int64_t xi = 0, yi = 0, rem = o;
      for (int d = static_cast<int>(plan.outer_dims.size()) - 1; d >= 0; --d) {
        const int64_t idx = rem % plan.outer_dims[d];
        rem /= plan.outer_dims[d];
        xi += idx * plan.outer_x[d];
        yi += idx * plan.outer_y[d];
      }
      GS_RETURN_IF_ERROR(BatchedGemm(*this, gpu, s, px, xi * x_size, plan.x_stride * x_size, py,
                                     yi * y_size, plan.y_stride * y_size,
                                     out->data<float>() + o * plan.inner * out_size, plan.inner));
    }
    return absl::OkStatus();
  }

 private:
  BatchMatMulAdjoints adj_;
};

}  // namespace

absl::Status RegisterCudaMatMulKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterCudaFloat<MatMulKernel>(r, "MatMul"));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<BatchMatMulKernel>(r, "BatchMatMulV2"));
  return absl::OkStatus();
}

}  // namespace gradserve
