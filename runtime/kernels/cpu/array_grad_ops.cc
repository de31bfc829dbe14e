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
  explicit StridedSliceGradKernel(const Node& node) : OpKernel(node) {
    // The graph validated the attrs (all have defaults), so reading cannot fail.
    masks_ = array_shape::ReadStridedSliceMasks(node).value_or(array_shape::StridedSliceMasks{});
  }

  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor &shape_t = ctx.input(0), &begin = ctx.input(1), &end = ctx.input(2);
    const Tensor &strides = ctx.input(3), &dy = ctx.input(4);
    if (shape_t.shape().rank() != 1) return absl::InvalidArgumentError("shape must be a vector");
    const std::vector<int64_t> dims = ReadInts(shape_t);
    for (int64_t d : dims) {
      if (d < 0) return absl::InvalidArgumentError("shape has a negative dimension");
    }
    const Shape shape{absl::MakeConstSpan(dims)};
    GS_ASSIGN_OR_RETURN(
        array_shape::StridedSlicePlan plan,
        array_shape::StridedSlice(shape, begin.shape(), ReadInts(begin), end.shape(),
                                  ReadInts(end), strides.shape(), ReadInts(strides), masks_));
    if (plan.final_shape != dy.shape()) {
      return absl::InvalidArgumentError(absl::StrCat("dy has shape ", dy.shape().DebugString(),
                                                     " but the slice has shape ",
                                                     plan.final_shape.DebugString()));
    }
    Tensor* out = ctx.allocate_output(0, shape, dy.dtype());
    T* o = out->data<T>();
    std::fill(o, o + shape.num_elements(), T(0));
    const T* g = dy.data<T>();
    const int rank = shape.rank();
    const std::vector<int64_t> in_strides = DenseStrides(dims);
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
    const Tensor &data = ctx.input(0), &ids_t = ctx.input(1), &num_t = ctx.input(2);
    if (num_t.shape().rank() != 0) return absl::InvalidArgumentError("num_segments must be a scalar");
    const int64_t num = ReadInts(num_t)[0];
    if (num < 0) return absl::InvalidArgumentError("num_segments is negative");
    const Shape &ds = data.shape(), &is = ids_t.shape();
    bool prefix = is.rank() <= ds.rank();
    for (int i = 0; prefix && i < is.rank(); ++i) prefix = is.dim(i) == ds.dim(i);
    if (!prefix) {
      return absl::InvalidArgumentError(absl::StrCat("segment_ids shape ", is.DebugString(),
                                                     " is not a prefix of data shape ",
                                                     ds.DebugString()));
    }
    Shape out_shape{num};
    int64_t inner = 1;
    for (int i = is.rank(); i < ds.rank(); ++i) {
      out_shape.AddDim(ds.dim(i));
      inner *= ds.dim(i);
    }
    Tensor* out = ctx.allocate_output(0, out_shape, data.dtype());
    T* o = out->data<T>();
    std::fill(o, o + out_shape.num_elements(), T(0));
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
