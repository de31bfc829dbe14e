// The array kernels' shared host-side half (runtime/kernels/array_util.h).
// Device-neutral; it lives in the CPU folder because that one is built with
// every device.
#include "runtime/kernels/array_util.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernels/cpu/array_kernels.h"  // DispatchIndexType

namespace gradserve {

using array_shape::Ints;

std::vector<int64_t> ReadInts(const Tensor& t) {
  std::vector<int64_t> out(t.num_elements());
  (void)DispatchIndexType(t.dtype(), [&]<typename I>() -> absl::Status {
    const I* p = t.data<I>();
    for (int64_t i = 0; i < t.num_elements(); ++i) out[i] = static_cast<int64_t>(p[i]);
    return absl::OkStatus();
  });
  return out;
}

std::vector<int64_t> DenseStrides(absl::Span<const int64_t> dims) {
  std::vector<int64_t> s(dims.size(), 1);
  for (int i = static_cast<int>(dims.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * dims[i + 1];
  return s;
}

int64_t OuterSize(const Shape& shape, int axis) {
  int64_t n = 1;
  for (int i = 0; i < axis; ++i) n *= shape.dim(i);
  return n;
}

absl::Status Relabel(OpKernelContext& ctx, absl::StatusOr<Shape> shape) {
  if (!shape.ok()) return shape.status();
  GS_ASSIGN_OR_RETURN(Tensor out, ctx.input(0).Reshaped(*shape));
  ctx.set_output(0, std::move(out));
  return absl::OkStatus();
}

array_shape::StridedSliceMasks StridedSliceMasksOf(const Node& node) {
  return array_shape::ReadStridedSliceMasks(node).value_or(array_shape::StridedSliceMasks{});
}

absl::StatusOr<array_shape::StridedSlicePlan> PlanStridedSlice(
    const OpKernelContext& ctx, const Shape& input, const array_shape::StridedSliceMasks& masks) {
  const Tensor &begin = ctx.input(1), &end = ctx.input(2), &strides = ctx.input(3);
  return array_shape::StridedSlice(input, begin.shape(), ReadInts(begin), end.shape(),
                                   ReadInts(end), strides.shape(), ReadInts(strides), masks);
}

absl::StatusOr<StridedSliceGradPlan> PlanStridedSliceGrad(
    const OpKernelContext& ctx, const array_shape::StridedSliceMasks& masks) {
  const Tensor &shape_t = ctx.input(0), &dy = ctx.input(4);
  if (shape_t.shape().rank() != 1) return absl::InvalidArgumentError("shape must be a vector");
  const Ints dims = ReadInts(shape_t);
  for (int64_t d : dims) {
    if (d < 0) return absl::InvalidArgumentError("shape has a negative dimension");
  }
  StridedSliceGradPlan plan;
  plan.shape = Shape{absl::MakeConstSpan(dims)};
  GS_ASSIGN_OR_RETURN(plan.slice, PlanStridedSlice(ctx, plan.shape, masks));
  if (plan.slice.final_shape != dy.shape()) {
    return absl::InvalidArgumentError(absl::StrCat("dy has shape ", dy.shape().DebugString(),
                                                   " but the slice has shape ",
                                                   plan.slice.final_shape.DebugString()));
  }
  return plan;
}

absl::StatusOr<TransposePlan> PlanTranspose(const OpKernelContext& ctx) {
  const Tensor &in = ctx.input(0), &perm_t = ctx.input(1);
  const Ints perm = ReadInts(perm_t);
  TransposePlan plan;
  GS_ASSIGN_OR_RETURN(plan.out_shape, array_shape::Transpose(in.shape(), perm_t.shape(), perm));
  GS_ASSIGN_OR_RETURN(plan.perm, array_shape::NormalizePerm(perm, in.rank()));
  return plan;
}

absl::StatusOr<ConcatPlan> PlanConcatV2(const OpKernelContext& ctx) {
  const int n = ctx.num_inputs() - 1;
  const Tensor& axis_t = ctx.input(n);
  std::vector<Shape> shapes;
  ConcatPlan plan;
  for (int i = 0; i < n; ++i) {
    shapes.push_back(ctx.input(i).shape());
    plan.values.push_back(&ctx.input(i));
  }
  const Ints axis = ReadInts(axis_t);
  GS_ASSIGN_OR_RETURN(plan.out_shape, array_shape::Concat(shapes, axis_t.shape(), axis));
  const int rank = plan.out_shape.rank();
  const int ax = static_cast<int>(axis[0] < 0 ? axis[0] + rank : axis[0]);
  plan.outer = OuterSize(plan.out_shape, ax);
  return plan;
}

absl::StatusOr<ConcatPlan> PlanPack(const OpKernelContext& ctx, int64_t axis) {
  std::vector<Shape> shapes;
  ConcatPlan plan;
  for (int i = 0; i < ctx.num_inputs(); ++i) {
    shapes.push_back(ctx.input(i).shape());
    plan.values.push_back(&ctx.input(i));
  }
  GS_ASSIGN_OR_RETURN(plan.out_shape, array_shape::Pack(shapes, axis));
  if (plan.values.size() == 1) return plan;
  GS_ASSIGN_OR_RETURN(int ax, array_shape::PackAxis(axis, shapes[0].rank()));
  plan.outer = OuterSize(plan.out_shape, ax);
  return plan;
}

absl::StatusOr<GatherPlan> PlanGatherV2(const OpKernelContext& ctx, int64_t batch_dims) {
  const Tensor &params = ctx.input(0), &indices = ctx.input(1), &axis_t = ctx.input(2);
  const Ints axis = ReadInts(axis_t);
  GatherPlan plan;
  GS_ASSIGN_OR_RETURN(plan.out_shape, array_shape::GatherV2(params.shape(), indices.shape(),
                                                            axis_t.shape(), axis, batch_dims));
  GS_ASSIGN_OR_RETURN(int ax, array_shape::GatherAxis(axis[0], params.rank()));
  plan.outer = OuterSize(params.shape(), ax);
  plan.limit = params.dim(ax);
  for (int i = ax + 1; i < params.rank(); ++i) plan.inner *= params.dim(i);
  return plan;
}

absl::StatusOr<OneHotPlan> PlanOneHot(const OpKernelContext& ctx, int64_t axis) {
  const Tensor &indices = ctx.input(0), &depth_t = ctx.input(1);
  const Tensor &on = ctx.input(2), &off = ctx.input(3);
  OneHotPlan plan;
  GS_ASSIGN_OR_RETURN(plan.out_shape,
                      array_shape::OneHot(indices.shape(), depth_t.shape(), ReadInts(depth_t),
                                          on.shape(), off.shape(), axis));
  const int ax = axis == -1 ? indices.rank() : static_cast<int>(axis);
  plan.depth = plan.out_shape.dim(ax);
  plan.prefix = OuterSize(indices.shape(), ax);
  plan.suffix = plan.prefix == 0 ? 0 : indices.num_elements() / plan.prefix;
  return plan;
}

absl::StatusOr<SegmentSumPlan> PlanUnsortedSegmentSum(const OpKernelContext& ctx) {
  const Tensor &data = ctx.input(0), &ids = ctx.input(1), &num_t = ctx.input(2);
  if (num_t.shape().rank() != 0) return absl::InvalidArgumentError("num_segments must be a scalar");
  SegmentSumPlan plan;
  plan.num_segments = ReadInts(num_t)[0];
  if (plan.num_segments < 0) return absl::InvalidArgumentError("num_segments is negative");
  const Shape &ds = data.shape(), &is = ids.shape();
  bool prefix = is.rank() <= ds.rank();
  for (int i = 0; prefix && i < is.rank(); ++i) prefix = is.dim(i) == ds.dim(i);
  if (!prefix) {
    return absl::InvalidArgumentError(absl::StrCat("segment_ids shape ", is.DebugString(),
                                                   " is not a prefix of data shape ",
                                                   ds.DebugString()));
  }
  plan.out_shape = Shape{plan.num_segments};
  for (int i = is.rank(); i < ds.rank(); ++i) {
    plan.out_shape.AddDim(ds.dim(i));
    plan.inner *= ds.dim(i);
  }
  return plan;
}

}  // namespace gradserve
