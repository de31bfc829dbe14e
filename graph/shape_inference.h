// InferenceContext: what an op's shape function sees (input shapes, constant
// input values where known, attrs) and where it writes output shapes. Shape
// functions are pure and run once per node when it is added to a Graph; they may
// leave dimensions unknown (-1) but must never contradict what kernels produce
// (the op-conformance test checks this for every op).
#pragma once

#include <vector>

#include "absl/status/status.h"
#include "graph/graph.h"

namespace gradserve {

class InferenceContext {
 public:
  InferenceContext(Node& node, std::vector<Shape> input_shapes,
                   std::vector<const Tensor*> input_values);

  const std::string& node_name() const { return node_.name(); }
  int num_inputs() const { return static_cast<int>(input_shapes_.size()); }
  const Shape& input(int i) const { return input_shapes_[i]; }
  DType input_type(int i) const { return node_.input_type(i); }
  // The value of input i when known at graph-build time (its producer is a Const,
  // or a Shape of a fully defined shape); nullptr otherwise.
  const Tensor* input_tensor(int i) const { return input_values_[i]; }
  // The node output feeding input i (e.g. ReadVariableOp looks at its VarHandleOp).
  const NodeOut& input_source(int i) const { return node_.input(i); }

  int num_outputs() const { return node_.num_outputs(); }
  DType output_type(int i) const { return node_.output_type(i); }
  void set_output(int i, Shape shape) { output_shapes_[i] = std::move(shape); }
  const Shape& output(int i) const { return output_shapes_[i]; }
  // Publishes output 0's value for consumers' shape functions.
  void set_output_value(Tensor value) { output_value_ = std::move(value); }

  template <typename T>
  absl::StatusOr<T> GetAttr(absl::string_view name) const {
    return node_.GetAttr<T>(name);
  }

  // InvalidArgument unless input i has rank `rank` (unknown rank passes and
  // becomes unknown dims of that rank).
  absl::StatusOr<Shape> WithRank(int i, int rank) const;
  absl::StatusOr<Shape> WithRankAtLeast(int i, int rank) const;
  // Reads input i (an int32/int64 vector) as a shape. Unknown values become -1;
  // if the value is unknown but its length is, the result has that rank.
  absl::StatusOr<Shape> MakeShapeFromShapeTensor(int i) const;
  // Reads input i (an int32/int64 scalar or vector) as integers, if known.
  std::optional<std::vector<int64_t>> InputAsInts(int i) const;

  // An error naming the node: "node 'x' (MatMul): <message>".
  template <typename... Args>
  absl::Status Error(const Args&... args) const {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", node_.name(), "' (", node_.op(), "): ", args...));
  }

  std::vector<Shape> TakeOutputShapes() { return std::move(output_shapes_); }
  std::optional<Tensor> TakeOutputValue() { return std::move(output_value_); }

 private:
  Node& node_;
  std::vector<Shape> input_shapes_;
  std::vector<const Tensor*> input_values_;
  std::vector<Shape> output_shapes_;
  std::optional<Tensor> output_value_;
};

// Reusable shape functions.
namespace shape_fn {
absl::Status Unchanged(InferenceContext& c);        // output 0 = input 0
absl::Status Scalar(InferenceContext& c);           // output 0 = []
absl::Status NoOutputs(InferenceContext& c);        // nothing to infer
absl::Status UnknownShape(InferenceContext& c);     // every output unknown rank
absl::Status BroadcastBinary(InferenceContext& c);  // output 0 = broadcast(in0, in1)
// Normalizes `axis` into [0, rank); InvalidArgument when out of range.
absl::StatusOr<int64_t> NormalizeAxis(const InferenceContext& c, int64_t axis, int rank);
}  // namespace shape_fn

}  // namespace gradserve
