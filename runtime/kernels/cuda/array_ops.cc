// The CUDA device's array kernels (float32 data; shapes, axes, begin/end,
// paddings, multiples and permutations in host memory): the metadata ops that
// relabel a buffer (Reshape, ExpandDims, Squeeze, Identity, StopGradient,
// Shape), the ops that move a strided box (Note [Strided boxes] in
// array_kernels.h: Slice, StridedSlice, StridedSliceGrad, Pad, ConcatV2, Pack,
// Transpose, Tile) and the indexed ones (GatherV2, OneHot, UnsortedSegmentSum).
//
// Inputs are checked as the CPU kernels check them (runtime/kernels/cpu/
// array_ops.cc, slice_ops.cc, gather_ops.cc, array_grad_ops.cc), by the same
// plans (runtime/kernels/array_util.h), so codes and messages agree; the
// metadata ops are the CPU's kernel classes (runtime/kernels/
// metadata_kernels.h) with the CUDA placement check. The one difference is
// what the host cannot see without waiting for the device: an
// index out of range, where the CPU kernels fail, gives a row of zeros in
// GatherV2 and is dropped by UnsortedSegmentSum (TensorFlow's GPU kernels do
// the same).
#include "graph/ops/array_ops.h"

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/array_util.h"
#include "runtime/kernels/cuda/array_kernels.h"
#include "runtime/kernels/cuda/cuda_kernel_util.h"
#include "runtime/kernels/metadata_kernels.h"

namespace gradserve {
namespace {

using array_shape::Ints;

// The CUDA Placement of Note [Device-neutral metadata kernels].
struct CudaPlacement {
  static absl::Status Check(const OpKernel& k, OpKernelContext& ctx,
                            std::initializer_list<int> host) {
    return CheckOnDevice(k, ctx, host);
  }
};

// Calls fn.template operator()<I>() for the index dtype among Is.
template <typename... Is, typename Fn>
absl::Status DispatchIndex(const OpKernel& k, DType dtype, Fn&& fn) {
  absl::Status status = absl::InvalidArgumentError(
      absl::StrCat(k.name(), ": the CUDA kernel takes no ", DTypeName(dtype), " indices"));
  ((dtype == DTypeOf<Is>::value ? (status = fn.template operator()<Is>(), true) : false) || ...);
  return status;
}

const char* At(const Tensor& t, int64_t offset) {
  return static_cast<const char*>(t.raw_data()) + offset * DTypeSize(t.dtype());
}
char* At(Tensor* t, int64_t offset) {
  return static_cast<char*>(t->raw_data()) + offset * DTypeSize(t->dtype());
}

// The box of `dims` (Note [Strided boxes]) with the dimensions of size 1
// dropped and each dimension merged into the one before it when the two step
// as one. Unimplemented when more than kMaxBoxRank dimensions remain.
absl::StatusOr<cuda::StridedBox> MakeBox(const OpKernel& k, absl::Span<const int64_t> dims,
                                         absl::Span<const int64_t> src_strides,
                                         absl::Span<const int64_t> dst_strides) {
  cuda::StridedBox box;
  for (size_t i = 0; i < dims.size(); ++i) {
    const int64_t d = dims[i], s = src_strides[i], t = dst_strides[i];
    if (d == 1) continue;
    const int last = box.rank - 1;
    if (last >= 0 && box.src_strides[last] == s * d && box.dst_strides[last] == t * d) {
      box.dims[last] *= d;
      box.src_strides[last] = s;
      box.dst_strides[last] = t;
      continue;
    }
    if (box.rank == cuda::kMaxBoxRank) {
      return absl::UnimplementedError(absl::StrCat(k.name(), ": the CUDA kernel of ", k.node().op(),
                                                   " moves boxes of rank <= ", cuda::kMaxBoxRank,
                                                   " (after merging)"));
    }
    box.dims[box.rank] = d;
    box.src_strides[box.rank] = s;
    box.dst_strides[box.rank] = t;
    ++box.rank;
  }
  return box;
}

// Copies the box from `src` into `dst` (pointers at the box's first element).
absl::Status CopyBox(const OpKernel& k, OpKernelContext& ctx, const void* src, void* dst,
                     size_t element_size, absl::Span<const int64_t> dims,
                     absl::Span<const int64_t> src_strides, absl::Span<const int64_t> dst_strides) {
  GS_ASSIGN_OR_RETURN(cuda::StridedBox box, MakeBox(k, dims, src_strides, dst_strides));
  return LaunchStatus(k, cuda::LaunchStridedCopy(src, dst, element_size, box, Gpu(ctx).stream()));
}

// Output 0 (of `out_shape`) = the box of input 0 that starts at element
// `offset` and steps by `src_strides`, in row-major order over `dims`. A box
// that is one contiguous range of the input shares the input's buffer.
absl::Status ReadBox(const OpKernel& k, OpKernelContext& ctx, int64_t offset,
                     absl::Span<const int64_t> dims, absl::Span<const int64_t> src_strides,
                     const Shape& out_shape) {
  const Tensor& in = ctx.input(0);
  if (out_shape.num_elements() == 0) {
    ctx.allocate_output(0, out_shape, in.dtype());
    return absl::OkStatus();
  }
  const Ints dst_strides = DenseStrides(dims);
  GS_ASSIGN_OR_RETURN(cuda::StridedBox box, MakeBox(k, dims, src_strides, dst_strides));
  if (box.rank == 0 || (box.rank == 1 && box.src_strides[0] == 1)) {
    GS_ASSIGN_OR_RETURN(Tensor flat, in.Reshaped(Shape{in.num_elements()}));
    GS_ASSIGN_OR_RETURN(Tensor out,
                        flat.Slice(offset, offset + out_shape.num_elements()).Reshaped(out_shape));
    ctx.set_output(0, std::move(out));
    return absl::OkStatus();
  }
  Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
  return LaunchStatus(k, cuda::LaunchStridedCopy(At(in, offset), out->raw_data(),
                                                 DTypeSize(in.dtype()), box, Gpu(ctx).stream()));
}

// Zeroes `t` on the device's stream.
absl::Status Zero(const OpKernel& k, OpKernelContext& ctx, Tensor* t) {
  if (t->bytes() == 0) return absl::OkStatus();
  return LaunchStatus(k, cudaMemsetAsync(t->raw_data(), 0, t->bytes(), Gpu(ctx).stream()));
}

// --- Strided boxes ------------------------------------------------------------

class SliceKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1, 2}));
    const Tensor &in = ctx.input(0), &begin = ctx.input(1), &size = ctx.input(2);
    const Ints b = ReadInts(begin);
    GS_ASSIGN_OR_RETURN(Shape out_shape, array_shape::Slice(in.shape(), begin.shape(), b,
                                                            size.shape(), ReadInts(size)));
    const Ints strides = DenseStrides(in.shape().dims());
    int64_t offset = 0;
    for (int i = 0; i < in.rank(); ++i) offset += b[i] * strides[i];
    return ReadBox(*this, ctx, offset, out_shape.dims(), strides, out_shape);
  }
};

// Where a StridedSlice plan (over `in`'s dimensions) starts, and its strides
// in elements of `in`.
void PlanOffsets(const Shape& in, const array_shape::StridedSlicePlan& plan, int64_t* offset,
                 Ints* strides) {
  const Ints dense = DenseStrides(in.dims());
  *offset = 0;
  strides->resize(in.rank());
  for (int i = 0; i < in.rank(); ++i) {
    *offset += plan.begin[i] * dense[i];
    (*strides)[i] = plan.strides[i] * dense[i];
  }
}

class StridedSliceKernel final : public OpKernel {
 public:
  explicit StridedSliceKernel(const Node& node)
      : OpKernel(node), masks_(StridedSliceMasksOf(node)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1, 2, 3}));
    const Tensor& in = ctx.input(0);
    GS_ASSIGN_OR_RETURN(array_shape::StridedSlicePlan plan,
                        PlanStridedSlice(ctx, in.shape(), masks_));
    int64_t offset;
    Ints src_strides;
    PlanOffsets(in.shape(), plan, &offset, &src_strides);
    return ReadBox(*this, ctx, offset, plan.processing_dims, src_strides, plan.final_shape);
  }

 private:
  array_shape::StridedSliceMasks masks_;
};

// out = zeros(shape) with dy written where StridedSlice(x of `shape`) reads
// (the elements are distinct, so writing is the CPU kernel's adding).
class StridedSliceGradKernel final : public OpKernel {
 public:
  explicit StridedSliceGradKernel(const Node& node)
      : OpKernel(node), masks_(StridedSliceMasksOf(node)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {0, 1, 2, 3}));
    const Tensor& dy = ctx.input(4);
    GS_ASSIGN_OR_RETURN(StridedSliceGradPlan grad, PlanStridedSliceGrad(ctx, masks_));
    const Shape& shape = grad.shape;
    const array_shape::StridedSlicePlan& plan = grad.slice;
    Tensor* out = ctx.allocate_output(0, shape, dy.dtype());
    GS_RETURN_IF_ERROR(Zero(*this, ctx, out));
    if (dy.num_elements() == 0) return absl::OkStatus();
    int64_t offset;
    Ints dst_strides;
    PlanOffsets(shape, plan, &offset, &dst_strides);
    return CopyBox(*this, ctx, dy.raw_data(), At(out, offset), DTypeSize(dy.dtype()),
                   plan.processing_dims, DenseStrides(plan.processing_dims), dst_strides);
  }

 private:
  array_shape::StridedSliceMasks masks_;
};

class TransposeKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor& in = ctx.input(0);
    GS_ASSIGN_OR_RETURN(TransposePlan plan, PlanTranspose(ctx));
    // Output dimension i walks input dimension perm[i].
    const Ints in_strides = DenseStrides(in.shape().dims());
    Ints src_strides(in.rank());
    for (int i = 0; i < in.rank(); ++i) src_strides[i] = in_strides[plan.perm[i]];
    return ReadBox(*this, ctx, 0, plan.out_shape.dims(), src_strides, plan.out_shape);
  }
};

class TileKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor &in = ctx.input(0), &multiples_t = ctx.input(1);
    const Ints multiples = ReadInts(multiples_t);
    GS_ASSIGN_OR_RETURN(Shape out_shape,
                        array_shape::Tile(in.shape(), multiples_t.shape(), multiples));
    if (out_shape == in.shape()) {
      ctx.set_output(0, in);
      return absl::OkStatus();
    }
    Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
    if (out->num_elements() == 0) return absl::OkStatus();
    // The output viewed as [m0, d0, m1, d1, ...]: the repeats read with stride 0.
    const Ints in_strides = DenseStrides(in.shape().dims());
    Ints view, src_strides;
    for (int i = 0; i < in.rank(); ++i) {
      view.insert(view.end(), {multiples[i], in.dim(i)});
      src_strides.insert(src_strides.end(), {0, in_strides[i]});
    }
    return CopyBox(*this, ctx, in.raw_data(), out->raw_data(), DTypeSize(in.dtype()), view,
                   src_strides, DenseStrides(view));
  }
};

// Zero padding: zeros everywhere, then the input into the interior.
class PadKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor &in = ctx.input(0), &paddings_t = ctx.input(1);
    const Ints paddings = ReadInts(paddings_t);
    GS_ASSIGN_OR_RETURN(Shape out_shape,
                        array_shape::Pad(in.shape(), paddings_t.shape(), paddings));
    if (out_shape == in.shape()) {
      ctx.set_output(0, in);
      return absl::OkStatus();
    }
    Tensor* out = ctx.allocate_output(0, out_shape, in.dtype());
    GS_RETURN_IF_ERROR(Zero(*this, ctx, out));
    if (in.num_elements() == 0) return absl::OkStatus();
    const Ints out_strides = DenseStrides(out_shape.dims());
    int64_t offset = 0;
    for (int i = 0; i < in.rank(); ++i) offset += paddings[2 * i] * out_strides[i];
    return CopyBox(*this, ctx, in.raw_data(), At(out, offset), DTypeSize(in.dtype()),
                   in.shape().dims(), DenseStrides(in.shape().dims()), out_strides);
  }
};

// Writes `out` as the plan's rows (ConcatPlan): one box per input.
absl::Status ConcatRows(const OpKernel& k, OpKernelContext& ctx, const ConcatPlan& plan,
                        Tensor* out) {
  if (out->num_elements() == 0) return absl::OkStatus();
  const int64_t outer = plan.outer, out_row = out->num_elements() / outer;
  int64_t column = 0;
  for (const Tensor* t : plan.values) {
    const int64_t row = t->num_elements() / outer;
    if (row > 0) {
      GS_RETURN_IF_ERROR(CopyBox(k, ctx, t->raw_data(), At(out, column), DTypeSize(t->dtype()),
                                 {outer, row}, {row, 1}, {out_row, 1}));
    }
    column += row;
  }
  return absl::OkStatus();
}

class ConcatV2Kernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {ctx.num_inputs() - 1}));
    GS_ASSIGN_OR_RETURN(ConcatPlan plan, PlanConcatV2(ctx));
    Tensor* out = ctx.allocate_output(0, plan.out_shape, plan.values[0]->dtype());
    return ConcatRows(*this, ctx, plan, out);
  }
};

class PackKernel final : public OpKernel {
 public:
  explicit PackKernel(const Node& node)
      : OpKernel(node), axis_(node.GetAttr<int64_t>("axis").value_or(0)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {}));
    GS_ASSIGN_OR_RETURN(ConcatPlan plan, PlanPack(ctx, axis_));
    if (plan.values.size() == 1) return Relabel(ctx, plan.out_shape);
    Tensor* out = ctx.allocate_output(0, plan.out_shape, plan.values[0]->dtype());
    return ConcatRows(*this, ctx, plan, out);
  }

 private:
  int64_t axis_;
};

// --- Indexed ------------------------------------------------------------------

// Out-of-range indices give rows of zeros (see the file comment).
class GatherV2Kernel final : public OpKernel {
 public:
  explicit GatherV2Kernel(const Node& node)
      : OpKernel(node), batch_dims_(node.GetAttr<int64_t>("batch_dims").value_or(0)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {2}));
    const Tensor &params = ctx.input(0), &indices = ctx.input(1);
    GS_ASSIGN_OR_RETURN(GatherPlan plan, PlanGatherV2(ctx, batch_dims_));
    Tensor* out = ctx.allocate_output(0, plan.out_shape, params.dtype());
    return DispatchIndex<int16_t, int32_t, int64_t>(
        *this, indices.dtype(), [&]<typename I>() -> absl::Status {
          return LaunchStatus(
              *this, cuda::LaunchGather(params.data<float>(), indices.data<I>(), out->data<float>(),
                                        plan.outer, plan.limit, indices.num_elements(), plan.inner,
                                        Gpu(ctx).stream()));
        });
  }

 private:
  int64_t batch_dims_;
};

class OneHotKernel final : public OpKernel {
 public:
  explicit OneHotKernel(const Node& node)
      : OpKernel(node), axis_(node.GetAttr<int64_t>("axis").value_or(-1)) {}
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {1}));
    const Tensor &indices = ctx.input(0), &on = ctx.input(2), &off = ctx.input(3);
    GS_ASSIGN_OR_RETURN(OneHotPlan plan, PlanOneHot(ctx, axis_));
    Tensor* out = ctx.allocate_output(0, plan.out_shape, on.dtype());
    return DispatchIndex<uint8_t, int8_t, int32_t, int64_t>(
        *this, indices.dtype(), [&]<typename I>() -> absl::Status {
          return LaunchStatus(
              *this, cuda::LaunchOneHot(indices.data<I>(), on.data<float>(), off.data<float>(),
                                        out->data<float>(), plan.prefix, plan.depth, plan.suffix,
                                        Gpu(ctx).stream()));
        });
  }

 private:
  int64_t axis_;
};

// out[segment_ids[i], ...] += data[i, ...]; ids outside [0, num_segments) are
// dropped (see the file comment).
class UnsortedSegmentSumKernel final : public OpKernel {
 public:
  using OpKernel::OpKernel;
  absl::Status Compute(OpKernelContext& ctx) const override {
    GS_RETURN_IF_ERROR(CheckOnDevice(*this, ctx, {2}));
    const Tensor &data = ctx.input(0), &ids = ctx.input(1);
    GS_ASSIGN_OR_RETURN(SegmentSumPlan plan, PlanUnsortedSegmentSum(ctx));
    Tensor* out = ctx.allocate_output(0, plan.out_shape, data.dtype());
    return DispatchIndex<int32_t, int64_t>(*this, ids.dtype(), [&]<typename I>() -> absl::Status {
      return LaunchStatus(
          *this, cuda::LaunchUnsortedSegmentSum(data.data<float>(), ids.data<I>(),
                                                out->data<float>(), ids.num_elements(), plan.inner,
                                                plan.num_segments, Gpu(ctx).stream()));
    });
  }
};

}  // namespace

absl::Status RegisterCudaArrayKernels(KernelRegistry& r) {
  const std::vector<DType> kF32 = {DType::kFloat};
  using Forward = ForwardKernel<CudaPlacement>;
  for (const char* op : {"Identity", "StopGradient"}) {
    GS_RETURN_IF_ERROR(
        RegisterCuda<Forward>(r, op, {DType::kFloat, DType::kInt64, DType::kBool}, "T", {}, false));
    GS_RETURN_IF_ERROR(
        RegisterCuda<Forward>(r, op, {DType::kInt32}, "T", {.inputs = {0}, .outputs = {0}}, true));
  }
  GS_RETURN_IF_ERROR(
      RegisterCuda<ReshapeKernel<CudaPlacement>>(r, "Reshape", kF32, "T", {.inputs = {1}}));
  GS_RETURN_IF_ERROR(
      RegisterCuda<ExpandDimsKernel<CudaPlacement>>(r, "ExpandDims", kF32, "T", {.inputs = {1}}));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<SqueezeKernel<CudaPlacement>>(r, "Squeeze"));
  GS_RETURN_IF_ERROR(
      RegisterCuda<ShapeKernel<CudaPlacement>>(r, "Shape", kF32, "T", {.outputs = {0}}));

  GS_RETURN_IF_ERROR(RegisterCuda<SliceKernel>(r, "Slice", kF32, "T", {.inputs = {1, 2}}));
  GS_RETURN_IF_ERROR(
      RegisterCuda<StridedSliceKernel>(r, "StridedSlice", kF32, "T", {.inputs = {1, 2, 3}}));
  GS_RETURN_IF_ERROR(RegisterCuda<StridedSliceGradKernel>(r, "StridedSliceGrad", kF32, "T",
                                                          {.inputs = {0, 1, 2, 3}}));
  GS_RETURN_IF_ERROR(RegisterCuda<TransposeKernel>(r, "Transpose", kF32, "T", {.inputs = {1}}));
  GS_RETURN_IF_ERROR(RegisterCuda<TileKernel>(r, "Tile", kF32, "T", {.inputs = {1}}));
  GS_RETURN_IF_ERROR(RegisterCuda<PadKernel>(r, "Pad", kF32, "T", {.inputs = {1}}));
  // The axis is the last input, after the N values: -1 counts from the end.
  GS_RETURN_IF_ERROR(RegisterCuda<ConcatV2Kernel>(r, "ConcatV2", kF32, "T", {.inputs = {-1}}));
  GS_RETURN_IF_ERROR(RegisterCudaFloat<PackKernel>(r, "Pack"));

  GS_RETURN_IF_ERROR(RegisterCuda<GatherV2Kernel>(r, "GatherV2", kF32, "Tparams", {.inputs = {2}}));
  GS_RETURN_IF_ERROR(RegisterCuda<OneHotKernel>(r, "OneHot", kF32, "T", {.inputs = {1}}));
  return RegisterCuda<UnsortedSegmentSumKernel>(r, "UnsortedSegmentSum", kF32, "T",
                                                {.inputs = {2}});
}

}  // namespace gradserve
