// Loss ops of the nn family (TensorFlow's names and semantics):
// SoftmaxCrossEntropyWithLogits, SparseSoftmaxCrossEntropyWithLogits, L2Loss.
#include "graph/op_def.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {
namespace {

// features [batch, classes], labels of the same shape (a probability per class)
// -> loss [batch], backprop [batch, classes].
absl::Status SoftmaxXentShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape features, c.WithRank(0, 2));
  GS_ASSIGN_OR_RETURN(Shape labels, c.WithRank(1, 2));
  absl::StatusOr<Shape> merged = features.Merge(labels);
  if (!merged.ok()) {
    return c.Error("features and labels must have the same shape, got ", features.DebugString(),
                   " and ", labels.DebugString());
  }
  c.set_output(0, Shape{merged->dim(0)});
  c.set_output(1, *merged);
  return absl::OkStatus();
}

// features [batch, classes], labels [batch] (class indices) -> loss [batch],
// backprop [batch, classes].
absl::Status SparseSoftmaxXentShape(InferenceContext& c) {
  GS_ASSIGN_OR_RETURN(Shape features, c.WithRank(0, 2));
  GS_ASSIGN_OR_RETURN(Shape labels, c.WithRank(1, 1));
  const int64_t a = features.dim(0), b = labels.dim(0);
  if (a >= 0 && b >= 0 && a != b) {
    return c.Error("features has batch size ", a, " but labels has ", b, " (features ",
                   features.DebugString(), ", labels ", labels.DebugString(), ")");
  }
  const int64_t batch = a >= 0 ? a : b;
  c.set_output(0, Shape{batch});
  c.set_output(1, Shape{batch, features.dim(1)});
  return absl::OkStatus();
}

}  // namespace

absl::Status RegisterLossOps(OpRegistry& r) {
  const std::vector<DType> floats = FloatTypes();
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("SoftmaxCrossEntropyWithLogits")
                                    .Input("features", "T")
                                    .Input("labels", "T")
                                    .Output("loss", "T")
                                    .Output("backprop", "T")
                                    .TypeAttr("T", floats)
                                    .SetShapeFn(SoftmaxXentShape)));
  GS_RETURN_IF_ERROR(
      r.Register(OpDefBuilder("SparseSoftmaxCrossEntropyWithLogits")
                     .Input("features", "T")
                     .Input("labels", "Tlabels")
                     .Output("loss", "T")
                     .Output("backprop", "T")
                     .TypeAttr("T", floats)
                     .TypeAttr("Tlabels", {DType::kInt32, DType::kInt64}, DType::kInt64)
                     .SetShapeFn(SparseSoftmaxXentShape)));
  // L2Loss(t) = sum(t^2) / 2, a scalar.
  GS_RETURN_IF_ERROR(r.Register(OpDefBuilder("L2Loss")
                                    .Input("t", "T")
                                    .Output("output", "T")
                                    .TypeAttr("T", floats)
                                    .SetShapeFn(shape_fn::Scalar)));
  return absl::OkStatus();
}

}  // namespace gradserve
