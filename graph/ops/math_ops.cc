// Math ops: element-wise arithmetic with NumPy broadcasting, comparisons, Cast,
// and matrix products.
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

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

}  // namespace

absl::Status RegisterMathOps(OpRegistry& r) {
  for (const char* op : {"Add", "AddV2"}) {
    GS_RETURN_IF_ERROR(r.Register(OpDefBuilder(op)
                                      .Input("x", "T")
                                      .Input("y", "T")
                                      .Output("z", "T")
                                      .TypeAttr("T", RealNumberTypes())
                                      .SetShapeFn(shape_fn::BroadcastBinary)));
  }
  GS_RETURN_IF_ERROR(r.Register(
      OpDefBuilder("MatMul")
          .Input("a", "T")
          .Input("b", "T")
          .Output("product", "T")
          .Attr("transpose_a", false)
          .Attr("transpose_b", false)
          // TensorFlow >= 2.15 writes these hints; they do not change the result.
          .Attr("grad_a", false)
          .Attr("grad_b", false)
          .TypeAttr("T", {DType::kHalf, DType::kBFloat16, DType::kFloat, DType::kDouble,
                          DType::kInt32, DType::kInt64})
          .SetShapeFn(MatMulShape)));
  return absl::OkStatus();
}

}  // namespace gradserve
