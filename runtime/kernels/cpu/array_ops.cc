// CPU kernels for array ops (graph/ops/array_ops.cc): sources and the fills,
// the CPU's instances of the device-neutral metadata kernels (identities,
// Reshape, Squeeze, ExpandDims, Shape: runtime/kernels/metadata_kernels.h), the
// shared helpers of runtime/kernels/cpu/array_kernels.h and the family's
// registration.
#include <cstring>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"
#include "runtime/kernels/metadata_kernels.h"
#include "runtime/kernels/state_kernels.h"  // NoOpKernel

namespace gradserve {
namespace {

template <typename U>
void CopyStridedT(const U* src, U* dst, absl::Span<const int64_t> dims,
                  absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides) {
  const int rank = static_cast<int>(dims.size());
  if (rank == 0) {
    *dst = *src;
    return;
  }
  for (int64_t d : dims) {
    if (d == 0) return;
  }
  const int last = rank - 1;
  const int64_t n = dims[last], ss = src_strides[last], ds = dst_strides[last];
  std::vector<int64_t> idx(rank, 0);
  int64_t so = 0, dof = 0;
  while (true) {
    if (ss == 1 && ds == 1) {
      std::memcpy(dst + dof, src + so, n * sizeof(U));
    } else {
      for (int64_t k = 0; k < n; ++k) dst[dof + k * ds] = src[so + k * ss];
    }
    // Advance the index over the outer dimensions, odometer style.
    int j = last - 1;
    for (; j >= 0; --j) {
      ++idx[j];
      so += src_strides[j];
      dof += dst_strides[j];
      if (idx[j] < dims[j]) break;
      so -= src_strides[j] * dims[j];
      dof -= dst_strides[j] * dims[j];
      idx[j] = 0;
    }
    if (j < 0) return;
  }
}

}  // namespace

void CopyStrided(const void* src, void* dst, size_t element_size, absl::Span<const int64_t> dims,
                 absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides) {
  auto copy = [&]<typename U>() {
    CopyStridedT(static_cast<const U*>(src), static_cast<U*>(dst), dims, src_strides, dst_strides);
  };
  switch (element_size) {
    case 1:
      return copy.template operator()<uint8_t>();
    case 2:
      return copy.template operator()<uint16_t>();
    case 4:
      return copy.template operator()<uint32_t>();
    default:
      return copy.template operator()<uint64_t>();
  }
}

void ParallelFor(const OpKernelContext& ctx, int64_t n, double bytes_per_unit,
                 const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  EigenCpu(ctx).parallelFor(n, Eigen::TensorOpCost(bytes_per_unit / 2, bytes_per_unit / 2, 1),
                            [&fn](Eigen::Index begin, Eigen::Index end) { fn(begin, end); });
}

namespace {

class ConstKernel final : public OpKernel {
 public:
  explicit ConstKernel(const Node& node) : OpKernel(node), value_(*node.constant_value()) {}
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext& ctx) const override {
    ctx.set_output(0, value_);
    return absl::OkStatus();
  }

 private:
  Tensor value_;  // shared by every run; consumers never write into it
};

class PlaceholderKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  bool IsExpensive() const override { return false; }
  absl::Status Compute(OpKernelContext&) const override {
    return absl::InvalidArgumentError(
        absl::StrCat("placeholder '", name(), "' must be fed a value"));
  }
};

// Sets every element of `out` to the element at `value` (one element of out's dtype).
absl::Status FillWith(const OpKernelContext& ctx, const void* value, Tensor* out) {
  if (out->num_elements() == 0) return absl::OkStatus();
  return DispatchBySize(out->dtype(), [&]<typename U>() -> absl::Status {
    U v;
    std::memcpy(&v, value, sizeof(U));
    out->flat<U>().device(EigenCpu(ctx)) = out->flat<U>().constant(v);
    return absl::OkStatus();
  });
}

class FillKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& dims = ctx.input(0);
    const Tensor& value = ctx.input(1);
    GS_ASSIGN_OR_RETURN(Shape shape,
                        array_shape::Fill(dims.shape(), ReadInts(dims), value.shape()));
    return FillWith(ctx, value.raw_data(), ctx.allocate_output(0, shape, value.dtype()));
  }
};

// ZerosLike (one = false) and OnesLike (one = true).
template <bool kOne>
class FillLikeKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    const Tensor& x = ctx.input(0);
    uint64_t pattern = 0;  // the bytes of one element: 0, or 1 of x's dtype
    if (kOne) {
      GS_RETURN_IF_ERROR(DispatchDType(x.dtype(), [&]<typename T>() -> absl::Status {
        const T one = static_cast<T>(1);
        std::memcpy(&pattern, &one, sizeof(T));
        return absl::OkStatus();
      }));
    }
    return FillWith(ctx, &pattern,
                    ctx.forward_input_or_allocate_output(0, 0, x.shape(), x.dtype()));
  }
};

}  // namespace

absl::Status RegisterCpuArrayGradKernels(KernelRegistry& r);  // array_grad_ops.cc

absl::Status RegisterCpuArrayKernels(KernelRegistry& r) {
  GS_RETURN_IF_ERROR(RegisterCpuArrayGradKernels(r));
  GS_RETURN_IF_ERROR(RegisterUntyped<ConstKernel>(r, "Const"));
  GS_RETURN_IF_ERROR(RegisterUntyped<PlaceholderKernel>(r, "Placeholder"));
  for (const char* op : {"Identity", "StopGradient", "PlaceholderWithDefault"}) {
    GS_RETURN_IF_ERROR(RegisterUntyped<ForwardKernel<AnyPlacement>>(r, op));
  }
  GS_RETURN_IF_ERROR(RegisterUntyped<NoOpKernel>(r, "NoOp"));
  // Metadata ops never touch the elements, so they run for any dtype.
  GS_RETURN_IF_ERROR(RegisterUntyped<ReshapeKernel<AnyPlacement>>(r, "Reshape"));
  GS_RETURN_IF_ERROR(RegisterUntyped<SqueezeKernel<AnyPlacement>>(r, "Squeeze"));
  GS_RETURN_IF_ERROR(RegisterUntyped<ExpandDimsKernel<AnyPlacement>>(r, "ExpandDims"));
  GS_RETURN_IF_ERROR(RegisterUntyped<ShapeKernel<AnyPlacement>>(r, "Shape"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<FillKernel>(r, "Fill"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<FillLikeKernel<false>>(r, "ZerosLike"));
  GS_RETURN_IF_ERROR(RegisterForArrayTypes<FillLikeKernel<true>>(r, "OnesLike"));
  GS_RETURN_IF_ERROR(RegisterCpuSliceKernels(r));
  return RegisterCpuGatherKernels(r);
}

}  // namespace gradserve
