// Math ops: element-wise arithmetic with NumPy broadcasting, comparisons, Cast,
// and matrix products. Names, arguments, attrs and defaults are TensorFlow's.
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// FloatTypes plus the signed integers: what TensorFlow's CPU kernels cover for
// Neg, Abs and Square.
const std::vector<DType>& SignedNumberTypes() {
  static const std::vector<DType> types = {DType::kHalf,   DType::kBFloat16, DType::kFloat,
                                           DType::kDouble, DType::kInt8,     DType::kInt16,
                                           DType::kInt32,  DType::kInt64};
  return types;
}

// The dtypes with a matrix-product kernel (Gemm).
const std::vector<DType>& MatMulTypes() {
  static const std::vector<DType> types = {DType::kHalf,   DType::kBFloat16, DType::kFloat,
                                           DType::kDouble, DType::kInt32,    DType::kInt64};
  return types;
}

// Equal with incompatible_shape_error=false yields a scalar `false` for shapes
// that cannot broadcast, instead of failing; so the output shape is only known
// once both input shapes are.
absl::Status EqualShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(bool strict, c.GetAttr<bool>("incompatible_shape_error"));
  if (strict) return shape_fn::BroadcastBinary(c);
  if (!c.input(0).IsFullyDefined() || !c.input(1).IsFullyDefined()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  absl::StatusOr<Shape> out = BroadcastShapes(c.input(0), c.input(1));
  c.set_output(0, out.ok() ? *std::move(out) : Shape{});
  return absl::OkStatus();
}

absl::Status MatMulShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape a, c.WithRank(0, 2));
  GS_ASSIGN_OR_RETURN(Shape b, c.WithRank(1, 2));
  GS_ASSIGN_OR_RETURN(bool ta, c.GetAttr<bool>("transpose_a"));
  GS_ASSIGN_OR_RETURN(bool tb, c.GetAttr<bool>("transpose_b"));
  const int64_t m = a.dim(ta ? 1 : 0), ka = a.dim(ta ? 0 : 1);
  const int64_t kb = b.dim(tb ? 1 : 0), n = b.dim(tb ? 0 : 1);
  if (ka >= 0 && kb >= 0 && ka != kb) {
    return c.Error("inner dimensions differ: a is ", a.DebugString(), (ta ? " (transposed)" : ""),
                   ", b is ", b.DebugString(), (tb ? " (transposed)" : ""));
  }
  c.set_output(0, Shape{m, n});
  return absl::OkStatus();
}

// [..., m, k] x [..., k, n] -> broadcast(...) + [m, n]; adj_* swap the last two dims.
absl::Status BatchMatMulShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape a, c.WithRankAtLeast(0, 2));
  GS_ASSIGN_OR_RETURN(Shape b, c.WithRankAtLeast(1, 2));
  GS_ASSIGN_OR_RETURN(bool adj_x, c.GetAttr<bool>("adj_x"));
  GS_ASSIGN_OR_RETURN(bool adj_y, c.GetAttr<bool>("adj_y"));
  if (a.unknown_rank() || b.unknown_rank()) {
    c.set_output(0, Shape::UnknownRank());
    return absl::OkStatus();
  }
  const int ra = a.rank(), rb = b.rank();
  const int64_t m = a.dim(adj_x ? ra - 1 : ra - 2), ka = a.dim(adj_x ? ra - 2 : ra - 1);
  const int64_t kb = b.dim(adj_y ? rb - 1 : rb - 2), n = b.dim(adj_y ? rb - 2 : rb - 1);
  if (ka >= 0 && kb >= 0 && ka != kb) {
    return c.Error("inner dimensions differ: x is ", a.DebugString(), (adj_x ? " (adjoint)" : ""),
                   ", y is ", b.DebugString(), (adj_y ? " (adjoint)" : ""));
  }
  absl::StatusOr<Shape> batch =
      BroadcastShapes(Shape(a.dims().subspan(0, ra - 2)), Shape(b.dims().subspan(0, rb - 2)));
  if (!batch.ok()) return c.Error("batch dimensions: ", batch.status().message());
  batch->AddDim(m);
  batch->AddDim(n);
  c.set_output(0, *std::move(batch));
  return absl::OkStatus();
}

absl::Status RegisterBinary(OpRegistry& r, const char* op, const std::vector<DType>& types,
                            std::optional<DType> out = std::nullopt) {
  OpDefBuilder b(op);
  b.Input("x", "T").Input("y", "T");
  if (out) {
    b.Output("z", *out);
  } else {
    b.Output("z", "T");
  }
  return r.Register(b.TypeAttr("T", types).SetShapeFn(shape_fn::BroadcastBinary));
}

absl::Status RegisterUnary(OpRegistry& r, const char* op, const std::vector<DType>& types) {
  return r.Register(OpDefBuilder(op)
                        .Input("x", "T")
                        .Output("y", "T")
                        .TypeAttr("T", types)
                        .SetShapeFn(shape_fn::Unchanged));
}

}  // namespace

// AddN: every input has the same shape; the output is their common shape.
absl::Status AddNShape(InferenceContext& c) {
  Shape merged = Shape::UnknownRank();
  for (int i = 0; i < c.num_inputs(); ++i) {
    absl::StatusOr<Shape> m = merged.Merge(c.input(i));
    if (!m.ok()) return c.Error("input ", i, ": ", m.status().message());
    merged = *std::move(m);
  }
  c.set_output(0, merged);
  return absl::OkStatus();
}

// BroadcastGradientArgs: two shape vectors in, two axis vectors of unknown length out.
absl::Status BroadcastGradientArgsShape(InferenceContext& c) {
  GS_RETURN_IF_ERROR(c.WithRank(0, 1).status());
  GS_RETURN_IF_ERROR(c.WithRank(1, 1).status());
  c.set_output(0, Shape{-1});
  c.set_output(1, Shape{-1});
  return absl::OkStatus();
}

absl::Status RegisterMathOps(OpRegistry& r) {
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("AddN")
                                    .InputList("inputs", "T", "N")
                                    .Output("sum", "T")
                                    .IntAttr("N", 1)
                                    .TypeAttr("T", RealNumberTypes())
                                    .SetShapeFn(AddNShape)));
  for (const char* op : {"Add", "AddV2", "Sub", "Mul", "Maximum", "Minimum"}) {
    GS_RETURN_IF_ERROR(RegisterBinary(r, op, RealNumberTypes()));
  }
  GS_RETURN_IF_ERROR(RegisterBinary(r, "RealDiv", FloatTypes()));
  GS_RETURN_IF_ERROR(RegisterBinary(r, "Pow",
                                    {DType::kHalf, DType::kBFloat16, DType::kFloat, DType::kDouble,
                                     DType::kInt32, DType::kInt64}));
  for (const char* op : {"Less", "Greater"}) {
    GS_RETURN_IF_ERROR(RegisterBinary(r, op, RealNumberTypes(), DType::kBool));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Equal")
                                    .Input("x", "T")
                                    .Input("y", "T")
                                    .Output("z", DType::kBool)
                                    .TypeAttr("T", AllTypes())
                                    .Attr("incompatible_shape_error", true)
                                    .SetShapeFn(EqualShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("LogicalAnd")
                                    .Input("x", DType::kBool)
                                    .Input("y", DType::kBool)
                                    .Output("z", DType::kBool)
                                    .SetShapeFn(shape_fn::BroadcastBinary)));

  for (const char* op : {"Neg", "Abs", "Square"}) {
    GS_RETURN_IF_ERROR(RegisterUnary(r, op, SignedNumberTypes()));
  }
  for (const char* op : {"Exp", "Log", "Sqrt", "Rsqrt"}) {
    GS_RETURN_IF_ERROR(RegisterUnary(r, op, FloatTypes()));
  }
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("Cast")
                                    .Input("x", "SrcT")
                                    .Output("y", "DstT")
                                    .TypeAttr("SrcT", AllTypes())
                                    .TypeAttr("DstT", AllTypes())
                                    .Attr("Truncate", false)
                                    .SetShapeFn(shape_fn::Unchanged)));

  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("MatMul")
                                    .Input("a", "T")
                                    .Input("b", "T")
                                    .Output("product", "T")
                                    .Attr("transpose_a", false)
                                    .Attr("transpose_b", false)
                                    // TensorFlow >= 2.15 writes these hints; they do
                                    // not change the result.
                                    .Attr("grad_a", false)
                                    .Attr("grad_b", false)
                                    .TypeAttr("T", MatMulTypes())
                                    .SetShapeFn(MatMulShape)));
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("BatchMatMulV2")
                                    .Input("x", "T")
                                    .Input("y", "T")
                                    .Output("output", "T")
                                    .Attr("adj_x", false)
                                    .Attr("adj_y", false)
                                    .Attr("grad_x", false)
                                    .Attr("grad_y", false)
                                    .TypeAttr("T", MatMulTypes())
                                    .SetShapeFn(BatchMatMulShape)));
  // Gradient helper (TensorFlow lists it under array ops): the axes along which
  // the gradients of two broadcast operands must be summed.
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("BroadcastGradientArgs")
                                    .Input("s0", "T")
                                    .Input("s1", "T")
                                    .Output("r0", "T")
                                    .Output("r1", "T")
                                    .TypeAttr("T", {DType::kInt32, DType::kInt64}, DType::kInt32)
                                    .SetShapeFn(BroadcastGradientArgsShape)));
  return absl::OkStatus();
}

}  // namespace gradserve
