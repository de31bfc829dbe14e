// CPU kernels of the array family's backward ops (graph/ops/array_grad_ops.cc).
// Registered from RegisterCpuArrayKernels.
#include <algorithm>

#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"

namespace gradserve {
namespace {

// out = zeros(shape); out[begin + k * strides] += dy[k] over the slice's elements.
template <typename T>
class StridedSliceGradKernel final : public OpKernel {
 public:
  explicit StridedSliceGradKernel(const Node& node)
      : OpKernel(node), masks_(StridedSliceMasksOf(node)) {}

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& dy = ctx.input(4);
    GS_ASSIGN_OR_RETURN(StridedSliceGradPlan grad, PlanStridedSliceGrad(ctx, masks_));
    const Shape& shape = grad.shape;
    const array_shape::StridedSlicePlan& plan = grad.slice;
    Tensor* out = ctx.allocate_output(0, shape, dy.dtype());
    T* o = out->data<T>();
    std::fill(o, o + shape.num_elements(), T(0));
    const T* g = dy.data<T>();
    const int rank = shape.rank();
    const std::vector<int64_t> in_strides = DenseStrides(shape.dims());
    std::vector<int64_t> k(rank, 0);
    for (int64_t n = 0; n < dy.num_elements(); ++n) {
      int64_t pos = 0;
      for (int i = 0; i < rank; ++i) pos += (plan.begin[i] + k[i] * plan.strides[i]) * in_strides[i];
      o[pos] += g[n];
      for (int i = rank - 1; i >= 0; --i) {  // odometer over processing_dims
        if (++k[i] < plan.processing_dims[i]) break;
        k[i] = 0;
      }
    }
    return absl::OkStatus();
  }

 private:
  array_shape::StridedSliceMasks masks_;
};

// out[segment_ids[i], ...] += data[i, ...]; negative ids are dropped.
template <typename T>
class UnsortedSegmentSumKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor &data = ctx.input(0), &ids_t = ctx.input(1);
    GS_ASSIGN_OR_RETURN(SegmentSumPlan plan, PlanUnsortedSegmentSum(ctx));
    const int64_t num = plan.num_segments, inner = plan.inner;
    Tensor* out = ctx.allocate_output(0, plan.out_shape, data.dtype());
    T* o = out->data<T>();
    std::fill(o, o + plan.out_shape.num_elements(), T(0));
    const T* d = data.data<T>();
    const std::vector<int64_t> ids = ReadInts(ids_t);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (ids[i] < 0) continue;
      if (ids[i] >= num) {
        return absl::InvalidArgumentError(absl::StrCat("segment_ids[", i, "] = ", ids[i],
                                                       " is not in [0, ", num, ")"));
      }
      for (int64_t j = 0; j < inner; ++j) o[ids[i] * inner + j] += d[i * inner + j];
    }
    return absl::OkStatus();
  }
};

}  // namespace

absl::Status RegisterCpuArrayGradKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterKernelClass<UnsortedSegmentSumKernel>(
      r, "UnsortedSegmentSum", TypeList<float, double, int32_t, int64_t>{}));
  return RegisterKernelClass<StridedSliceGradKernel>(
      r, "StridedSliceGrad", TypeList<float, double, int32_t, int64_t>{});
}

}  // namespace gradserve
