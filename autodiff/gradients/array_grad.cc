// Gradients of the array op family (graph/ops/array_ops.cc). Each function's first
// line is a comment with the math.
//
// Note [Static index data in array gradients]: the index inputs of these ops
// (perm, axis, begin, paddings, multiples) are Consts in practice and the
// shapes of the differentiated tensors are known while building (Placeholders
// carry their shapes). Gradients that need them read them at build time and
// return Unimplemented naming the op otherwise.
#include <optional>

#include "autodiff/gradients.h"
#include "graph/builder/ops.h"
#include "graph/status.h"

namespace gradserve {
namespace {

absl::Status NeedsStatic(const GradContext& ctx, absl::string_view what) {
  return absl::UnimplementedError(absl::StrCat("gradient of ", ctx.op.op(), " node '",
                                               ctx.op.name(), "' needs ", what,
                                               " known while building the graph"));
}

// The value of a Const (or otherwise build-time known) int tensor.
std::optional<std::vector<int64_t>> KnownInts(Output o) {
  if (!o.valid() || o.index != 0) return std::nullopt;
  const Tensor* t = o.node->constant_value();
  if (t == nullptr) return std::nullopt;
  std::vector<int64_t> v(t->num_elements());
  for (int64_t i = 0; i < t->num_elements(); ++i) {
    if (t->dtype() == DType::kInt32) {
      v[i] = t->data<int32_t>()[i];
    } else if (t->dtype() == DType::kInt64) {
      v[i] = t->data<int64_t>()[i];
    } else {
      return std::nullopt;
    }
  }
  return v;
}

std::optional<std::vector<int64_t>> KnownDims(Output o) {
  if (!o.valid() || !o.shape().IsFullyDefined()) return std::nullopt;
  return std::vector<int64_t>(o.shape().dims().begin(), o.shape().dims().end());
}

Output IntVec(const Scope& s, const std::vector<int64_t>& v) {
  std::vector<int32_t> v32(v.begin(), v.end());
  return ops::Const(s, v32, Shape{static_cast<int64_t>(v.size())});
}

// Sums g over the axes broadcasting added to reach x's shape: from the static
// shapes when both are known, else Reshape(Sum(g, BroadcastGradientArgs(Shape(x),
// Shape(g)).r0), Shape(x)).
Output SumToShapeOf(const Scope& s, Output g, Output x) {
  auto g_dims = KnownDims(g);
  auto x_dims = KnownDims(x);
  if (!g_dims || !x_dims || g_dims->size() < x_dims->size()) {
    Output sx = ops::ShapeOf(s, x);
    Output axes = ops::BroadcastGradientArgs(s, sx, ops::ShapeOf(s, g)).r0;
    return ops::Reshape(s, ops::Sum(s, g, axes), sx);
  }
  const int lead = static_cast<int>(g_dims->size() - x_dims->size());
  std::vector<int64_t> axes;
  for (int i = 0; i < static_cast<int>(g_dims->size()); ++i) {
    if (i < lead || ((*x_dims)[i - lead] == 1 && (*g_dims)[i] != 1)) axes.push_back(i);
  }
  if (axes.empty() && *g_dims == *x_dims) return g;
  Output summed = axes.empty() ? g : ops::Sum(s, g, IntVec(s, axes));
  return ops::Reshape(s, summed, IntVec(s, *x_dims));
}

absl::Status IdentityGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = dy
  (*gi)[0] = ctx.grad_outputs[0];
  return absl::OkStatus();
}

absl::Status ReshapeGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = Reshape(dy, Shape(x)); also ExpandDims and Squeeze
  (*gi)[0] = ops::Reshape(ctx.scope, ctx.grad_outputs[0], ops::ShapeOf(ctx.scope, ctx.inputs[0]));
  return absl::OkStatus();
}

absl::Status TransposeGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = Transpose(dy, InvertPermutation(perm))
  auto perm = KnownInts(ctx.inputs[1]);
  if (!perm) return NeedsStatic(ctx, "perm");
  std::vector<int64_t> inverse(perm->size());
  for (size_t i = 0; i < perm->size(); ++i) {
    int64_t p = (*perm)[i] < 0 ? (*perm)[i] + static_cast<int64_t>(perm->size()) : (*perm)[i];
    inverse[p] = static_cast<int64_t>(i);
  }
  (*gi)[0] = ops::Transpose(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, inverse));
  return absl::OkStatus();
}

absl::Status ConcatV2Grad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx_i = Slice(dy, offset_i along axis, Shape(x_i))
  const int n = static_cast<int>(ctx.inputs.size()) - 1;
  auto axis = KnownInts(ctx.inputs[n]);
  if (!axis || axis->size() != 1) return NeedsStatic(ctx, "axis");
  int64_t offset = 0;
  for (int i = 0; i < n; ++i) {
    auto dims = KnownDims(ctx.inputs[i]);
    if (!dims) return NeedsStatic(ctx, "input shapes");
    const int64_t rank = static_cast<int64_t>(dims->size());
    const int64_t a = (*axis)[0] < 0 ? (*axis)[0] + rank : (*axis)[0];
    std::vector<int64_t> begin(rank, 0);
    begin[a] = offset;
    offset += (*dims)[a];
    if (!ctx.needs_grad[i]) continue;
    (*gi)[i] = ops::Slice(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, begin),
                          IntVec(ctx.scope, *dims));
  }
  return absl::OkStatus();
}

absl::Status PackGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx_i = Reshape(Slice(dy, i along axis, 1), Shape(x_i)), i.e. Unpack(dy)
  auto axis_or = ctx.op.GetAttr<int64_t>("axis");
  GS_RETURN_IF_ERROR(axis_or.status());
  const int rank = ctx.inputs[0].shape().rank();
  if (rank < 0) return NeedsStatic(ctx, "the input rank");
  const int64_t axis = *axis_or < 0 ? *axis_or + rank + 1 : *axis_or;
  for (int i = 0; i < static_cast<int>(ctx.inputs.size()); ++i) {
    if (!ctx.needs_grad[i]) continue;
    std::vector<int64_t> begin(rank + 1, 0), size(rank + 1, -1);
    begin[axis] = i;
    size[axis] = 1;
    Output piece = ops::Slice(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, begin),
                              IntVec(ctx.scope, size));
    (*gi)[i] = ops::Reshape(ctx.scope, piece, ops::ShapeOf(ctx.scope, ctx.inputs[i]));
  }
  return absl::OkStatus();
}

absl::Status SliceGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = Pad(dy, [begin, Shape(x) - begin - Shape(y)])
  auto begin = KnownInts(ctx.inputs[1]);
  auto x_dims = KnownDims(ctx.inputs[0]);
  auto y_dims = KnownDims(ctx.outputs[0]);
  if (!begin || !x_dims || !y_dims) return NeedsStatic(ctx, "begin and shapes");
  std::vector<int64_t> paddings;
  for (size_t i = 0; i < x_dims->size(); ++i) {
    paddings.push_back((*begin)[i]);
    paddings.push_back((*x_dims)[i] - (*begin)[i] - (*y_dims)[i]);
  }
  std::vector<int32_t> p32(paddings.begin(), paddings.end());
  Output pads = ops::Const(ctx.scope, p32, Shape{static_cast<int64_t>(x_dims->size()), 2});
  (*gi)[0] = ops::Pad(ctx.scope, ctx.grad_outputs[0], pads);
  return absl::OkStatus();
}

absl::Status PadGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = Slice(dy, paddings[:, 0], Shape(x))
  auto paddings = KnownInts(ctx.inputs[1]);
  if (!paddings) return NeedsStatic(ctx, "paddings");
  std::vector<int64_t> begin;
  for (size_t i = 0; i < paddings->size(); i += 2) begin.push_back((*paddings)[i]);
  (*gi)[0] = ops::Slice(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, begin),
                        ops::ShapeOf(ctx.scope, ctx.inputs[0]));
  return absl::OkStatus();
}

absl::Status TileGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = Sum(Reshape(dy, [m0, d0, m1, d1, ...]), axes [0, 2, 4, ...])
  auto multiples = KnownInts(ctx.inputs[1]);
  auto dims = KnownDims(ctx.inputs[0]);
  if (!multiples || !dims) return NeedsStatic(ctx, "multiples and the input shape");
  std::vector<int64_t> split, axes;
  for (size_t i = 0; i < dims->size(); ++i) {
    axes.push_back(static_cast<int64_t>(split.size()));
    split.push_back((*multiples)[i]);
    split.push_back((*dims)[i]);
  }
  Output g = ops::Reshape(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, split));
  (*gi)[0] = ops::Sum(ctx.scope, g, IntVec(ctx.scope, axes));
  return absl::OkStatus();
}

absl::StatusOr<ops::StridedSliceAttrs> GetStridedSliceAttrs(const Node& node) {
  ops::StridedSliceAttrs attrs;
  for (auto [name, field] : {std::pair{"begin_mask", &attrs.begin_mask},
                             std::pair{"end_mask", &attrs.end_mask},
                             std::pair{"ellipsis_mask", &attrs.ellipsis_mask},
                             std::pair{"new_axis_mask", &attrs.new_axis_mask},
                             std::pair{"shrink_axis_mask", &attrs.shrink_axis_mask}}) {
    GS_ASSIGN_OR_RETURN(*field, node.GetAttr<int64_t>(name));
  }
  return attrs;
}

absl::Status StridedSliceGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dx = StridedSliceGrad(Shape(x), begin, end, strides, dy)
  GS_ASSIGN_OR_RETURN(ops::StridedSliceAttrs attrs, GetStridedSliceAttrs(ctx.op));
  Output shape = ops::ShapeOf(ctx.scope, ctx.inputs[0], {.out_type = ctx.inputs[1].dtype()});
  (*gi)[0] = ops::StridedSliceGrad(ctx.scope, shape, ctx.inputs[1], ctx.inputs[2], ctx.inputs[3],
                                   ctx.grad_outputs[0], attrs);
  return absl::OkStatus();
}

absl::Status StridedSliceGradGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // d(dy) = StridedSlice(g, begin, end, strides)
  GS_ASSIGN_OR_RETURN(ops::StridedSliceAttrs attrs, GetStridedSliceAttrs(ctx.op));
  (*gi)[4] = ops::StridedSlice(ctx.scope, ctx.grad_outputs[0], ctx.inputs[1], ctx.inputs[2],
                               ctx.inputs[3], attrs);
  return absl::OkStatus();
}

Output IndexScalar(const Scope& s, DType dtype, int64_t v) {
  if (dtype == DType::kInt64) return ops::Const<int64_t>(s, v);
  return ops::Const<int32_t>(s, static_cast<int32_t>(v));
}

absl::Status GatherV2Grad(const GradContext& ctx, std::vector<Output>* gi) {
  // dparams = UnsortedSegmentSum(dy, indices, params.shape[axis]) along axis
  const Scope& s = ctx.scope;
  GS_ASSIGN_OR_RETURN(int64_t batch_dims, ctx.op.GetAttr<int64_t>("batch_dims"));
  auto dims = KnownDims(ctx.inputs[0]);
  auto axis_v = KnownInts(ctx.inputs[2]);
  if (!dims || !axis_v || axis_v->size() != 1) return NeedsStatic(ctx, "params shape and axis");
  if (batch_dims != 0) return absl::UnimplementedError("GatherV2 gradient with batch_dims != 0");
  const int rank = static_cast<int>(dims->size());
  const int a = static_cast<int>((*axis_v)[0] < 0 ? (*axis_v)[0] + rank : (*axis_v)[0]);
  std::vector<int64_t> values_shape(dims->begin(), dims->end());
  values_shape[a] = -1;
  Output values = ops::Reshape(s, ctx.grad_outputs[0], IntVec(s, values_shape));
  Output ids = ops::Reshape(s, ctx.inputs[1], IntVec(s, {-1}));
  Output num = ops::Const<int32_t>(s, static_cast<int32_t>((*dims)[a]));
  if (a == 0) {
    (*gi)[0] = ops::UnsortedSegmentSum(s, values, ids, num);
    return absl::OkStatus();
  }
  // Move the axis to the front, sum the segments, move it back.
  std::vector<int64_t> perm = {a}, inverse(rank);
  for (int i = 0; i < rank; ++i)
    if (i != a) perm.push_back(i);
  for (int i = 0; i < rank; ++i) inverse[perm[i]] = i;
  Output summed = ops::UnsortedSegmentSum(s, ops::Transpose(s, values, IntVec(s, perm)), ids, num);
  (*gi)[0] = ops::Transpose(s, summed, IntVec(s, inverse));
  return absl::OkStatus();
}

absl::Status UnsortedSegmentSumGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // ddata[i, ...] = segment_ids[i] >= 0 ? dy[segment_ids[i], ...] : 0
  const Scope& s = ctx.scope;
  Output ids = ctx.inputs[1];
  const DType t = ids.dtype();
  Output gathered = ops::GatherV2(s, ctx.grad_outputs[0], ops::Maximum(s, ids, IndexScalar(s, t, 0)),
                                  ops::Const<int32_t>(s, 0));
  auto ids_dims = KnownDims(ids);
  const int data_rank = ctx.inputs[0].shape().rank();
  if (!ids_dims || data_rank < 0) return NeedsStatic(ctx, "segment_ids shape and data rank");
  std::vector<int64_t> mask_shape = *ids_dims;
  mask_shape.resize(data_rank, 1);
  Output keep = ops::Reshape(s, ops::Greater(s, ids, IndexScalar(s, t, -1)), IntVec(s, mask_shape));
  (*gi)[0] = ops::SelectV2(s, keep, gathered, ops::ZerosLike(s, gathered));
  return absl::OkStatus();
}

absl::Status SelectV2Grad(const GradContext& ctx, std::vector<Output>* gi) {
  // dt = reduce(c ? dy : 0), de = reduce(c ? 0 : dy), reduced to each operand's shape
  Output g = ctx.grad_outputs[0];
  Output zeros = ops::ZerosLike(ctx.scope, g);
  if (ctx.needs_grad[1]) {
    (*gi)[1] = SumToShapeOf(ctx.scope, ops::SelectV2(ctx.scope, ctx.inputs[0], g, zeros),
                            ctx.inputs[1]);
  }
  if (ctx.needs_grad[2]) {
    (*gi)[2] = SumToShapeOf(ctx.scope, ops::SelectV2(ctx.scope, ctx.inputs[0], zeros, g),
                            ctx.inputs[2]);
  }
  return absl::OkStatus();
}

absl::Status FillGrad(const GradContext& ctx, std::vector<Output>* gi) {
  // dvalue = Sum(dy)
  Output flat = ops::Reshape(ctx.scope, ctx.grad_outputs[0], IntVec(ctx.scope, {-1}));
  (*gi)[1] = ops::Sum(ctx.scope, flat, ops::Const<int32_t>(ctx.scope, 0));
  return absl::OkStatus();
}

// Sizes the result to one (empty) Output per input before calling `fn`.
GradFn Sized(absl::Status (*fn)(const GradContext&, std::vector<Output>*)) {
  return [fn](const GradContext& ctx, std::vector<Output>* gi) {
    gi->assign(ctx.inputs.size(), Output());
    return fn(ctx, gi);
  };
}

}  // namespace

absl::Status RegisterArrayGradients(GradientRegistry& r) {
  for (const char* op : {"Identity", "PlaceholderWithDefault"}) {
    GS_RETURN_IF_ERROR(r.Register(op, Sized(IdentityGrad)));
  }
  for (const char* op : {"Reshape", "ExpandDims", "Squeeze"}) {
    GS_RETURN_IF_ERROR(r.Register(op, Sized(ReshapeGrad)));
  }
  GS_RETURN_IF_ERROR(r.Register("Transpose", Sized(TransposeGrad)));
  GS_RETURN_IF_ERROR(r.Register("ConcatV2", Sized(ConcatV2Grad)));
  GS_RETURN_IF_ERROR(r.Register("Pack", Sized(PackGrad)));
  GS_RETURN_IF_ERROR(r.Register("Slice", Sized(SliceGrad)));
  GS_RETURN_IF_ERROR(r.Register("StridedSlice", Sized(StridedSliceGrad)));
  GS_RETURN_IF_ERROR(r.Register("StridedSliceGrad", Sized(StridedSliceGradGrad)));
  GS_RETURN_IF_ERROR(r.Register("Pad", Sized(PadGrad)));
  GS_RETURN_IF_ERROR(r.Register("Tile", Sized(TileGrad)));
  GS_RETURN_IF_ERROR(r.Register("GatherV2", Sized(GatherV2Grad)));
  GS_RETURN_IF_ERROR(r.Register("UnsortedSegmentSum", Sized(UnsortedSegmentSumGrad)));
  GS_RETURN_IF_ERROR(r.Register("SelectV2", Sized(SelectV2Grad)));
  GS_RETURN_IF_ERROR(r.Register("Fill", Sized(FillGrad)));
  for (const char* op : {"Shape", "ZerosLike", "OnesLike", "OneHot", "StopGradient", "Const",
                         "Placeholder", "NoOp"}) {
    GS_RETURN_IF_ERROR(r.RegisterNotDifferentiable(op));
  }
  return absl::OkStatus();
}

}  // namespace gradserve
