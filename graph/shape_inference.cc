#include "graph/shape_inference.h"

#include "graph/status.h"

namespace gradserve {

InferenceContext::InferenceContext(Node& node, std::vector<Shape> input_shapes,
                                   std::vector<const Tensor*> input_values)
    : node_(node),
      input_shapes_(std::move(input_shapes)),
      input_values_(std::move(input_values)),
      output_shapes_(node.num_outputs(), Shape::UnknownRank()) {}

absl::StatusOr<Shape> InferenceContext::WithRank(int i, int rank) const {
  const Shape& s = input_shapes_[i];
  if (s.unknown_rank()) return Shape::UnknownDims(rank);
  if (s.rank() != rank) {
    return Error("input ", i, " must have rank ", rank, " but has shape ", s.DebugString());
  }
  return s;
}

absl::StatusOr<Shape> InferenceContext::WithRankAtLeast(int i, int rank) const {
  const Shape& s = input_shapes_[i];
  if (!s.unknown_rank() && s.rank() < rank) {
    return Error("input ", i, " must have rank >= ", rank, " but has shape ", s.DebugString());
  }
  return s;
}

std::optional<std::vector<int64_t>> InferenceContext::InputAsInts(int i) const {
  const Tensor* t = input_values_[i];
  if (t == nullptr) return std::nullopt;
  std::vector<int64_t> out;
  if (t->dtype() == DType::kInt32) {
    for (int32_t v : t->span<int32_t>()) out.push_back(v);
  } else if (t->dtype() == DType::kInt64) {
    for (int64_t v : t->span<int64_t>()) out.push_back(v);
  } else {
    return std::nullopt;
  }
  return out;
}

absl::StatusOr<Shape> InferenceContext::MakeShapeFromShapeTensor(int i) const {
  if (auto values = InputAsInts(i)) {
    Shape s;
    for (int64_t v : *values) {
      if (v < -1) return Error("shape input ", i, " has a negative dimension ", v);
      s.AddDim(v);
    }
    return s;
  }
  const Shape& in = input_shapes_[i];
  if (in.rank() == 1 && in.dim(0) >= 0) return Shape::UnknownDims(static_cast<int>(in.dim(0)));
  return Shape::UnknownRank();
}

namespace shape_fn {

absl::Status Unchanged(InferenceContext& c) {
  c.set_output(0, c.input(0));
  return absl::OkStatus();
}

absl::Status Scalar(InferenceContext& c) {
  c.set_output(0, Shape{});
  return absl::OkStatus();
}

absl::Status NoOutputs(InferenceContext&) { return absl::OkStatus(); }

absl::Status UnknownShape(InferenceContext& c) {
  for (int i = 0; i < c.num_outputs(); ++i) c.set_output(i, Shape::UnknownRank());
  return absl::OkStatus();
}

absl::Status BroadcastBinary(InferenceContext& c) {
  absl::StatusOr<Shape> out = BroadcastShapes(c.input(0), c.input(1));
  if (!out.ok()) return c.Error(out.status().message());
  c.set_output(0, *std::move(out));
  return absl::OkStatus();
}

absl::StatusOr<int64_t> NormalizeAxis(const InferenceContext& c, int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) {
    return c.Error("axis ", axis, " is out of range for rank ", rank);
  }
  return axis < 0 ? axis + rank : axis;
}

}  // namespace shape_fn
}  // namespace gradserve
