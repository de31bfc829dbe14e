// Graph: nodes (op instances) joined by data edges ("node:port") and control
// edges ("^node"), built from a GraphDef or by the builder API (graph/builder/).
//
// Every node is validated when it is added: its op is registered, its attrs are
// declared and well typed, its inputs exist with the types the op expects, and its
// output types and shapes are inferred. So a Graph that exists is a valid graph,
// and every error names the node and the problem.
//
// Thread safety: build on one thread; a finished Graph may be read concurrently.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "graph/attr.h"
#include "graph/op_def.h"
#include "graph/shape.h"
#include "graph/tensor.h"
#include "proto/graph.pb.h"

namespace gradserve {

class Node;

// One output of a node.
struct NodeOut {
  Node* node = nullptr;
  int index = 0;
};

// Where one output goes: input `dst_input` of `dst`, or kControlSlot.
struct OutEdge {
  static constexpr int kControlSlot = -1;
  Node* dst;
  int src_output;  // kControlSlot for control edges
  int dst_input;
};

class Node {
 public:
  int id() const { return id_; }
  const std::string& name() const { return def_.name(); }
  const std::string& op() const { return def_.op(); }
  const NodeDef& def() const { return def_; }
  const OpDef& op_def() const { return *op_def_; }
  AttrView attrs() const { return AttrView(def_, *op_def_); }
  template <typename T>
  absl::StatusOr<T> GetAttr(absl::string_view attr_name) const {
    return attrs().Get<T>(attr_name);
  }
  // The device the NodeDef asks for ("" = any).
  const std::string& requested_device() const { return def_.device(); }

  int num_inputs() const { return static_cast<int>(inputs_.size()); }
  const NodeOut& input(int i) const { return inputs_[i]; }
  const std::vector<NodeOut>& inputs() const { return inputs_; }
  const std::vector<Node*>& control_inputs() const { return control_inputs_; }
  DType input_type(int i) const { return input_types_[i]; }
  const std::vector<DType>& input_types() const { return input_types_; }

  int num_outputs() const { return static_cast<int>(output_types_.size()); }
  DType output_type(int i) const { return output_types_[i]; }
  const std::vector<DType>& output_types() const { return output_types_; }
  // The inferred (possibly partial) shape of output i.
  const Shape& output_shape(int i) const { return output_shapes_[i]; }
  // Output 0's value when known while building (Const, or Shape of a known shape).
  const Tensor* constant_value() const {
    return constant_value_ ? &*constant_value_ : nullptr;
  }
  const std::vector<OutEdge>& out_edges() const { return out_edges_; }

  bool IsStateful() const { return op_def_->stateful; }

 private:
  friend class Graph;
  friend class InferenceContext;
  int id_ = -1;
  NodeDef def_;
  const OpDef* op_def_ = nullptr;
  std::vector<NodeOut> inputs_;
  std::vector<Node*> control_inputs_;
  std::vector<DType> input_types_;
  std::vector<DType> output_types_;
  std::vector<Shape> output_shapes_;
  std::optional<Tensor> constant_value_;
  std::vector<OutEdge> out_edges_;
};

class Graph {
 public:
  explicit Graph(const OpRegistry& registry = OpRegistry::Global()) : registry_(&registry) {}
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  // Validates and imports `graph_def`: duplicate names, unknown ops, unknown or
  // ill-typed attrs, missing inputs, type mismatches and cycles are errors that
  // name the node. Nodes may appear in any order.
  static absl::StatusOr<std::unique_ptr<Graph>> FromGraphDef(
      const GraphDef& graph_def, const OpRegistry& registry = OpRegistry::Global());
  // The nodes in the order they were added or imported; round trips are lossless.
  GraphDef ToGraphDef() const;

  // Adds one node whose inputs already exist; validates it and infers its types
  // and shapes. On error the graph is unchanged.
  absl::StatusOr<Node*> AddNode(NodeDef def);

  Node* FindNode(absl::string_view name) const;
  // Parses "name", "name:port"; NotFound / InvalidArgument on a bad reference.
  absl::StatusOr<NodeOut> FindOutput(absl::string_view tensor_name) const;

  // Nodes in insertion order, which is a topological order.
  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  int num_nodes() const { return static_cast<int>(nodes_.size()); }
  const OpRegistry& registry() const { return *registry_; }
  const VersionDef& versions() const { return versions_; }

 private:
  absl::Status ResolveTypes(Node& node) const;

  const OpRegistry* registry_;
  std::vector<std::unique_ptr<Node>> nodes_;
  // Import order for ToGraphDef (differs from nodes_ when the GraphDef was unsorted).
  std::vector<Node*> def_order_;
  absl::flat_hash_map<std::string, Node*> by_name_;
  VersionDef versions_;
};

// Splits "name:port" / "name" / "^name". Port is 0 when omitted, -1 for control.
struct TensorName {
  absl::string_view node;
  int port = 0;
};
absl::StatusOr<TensorName> ParseTensorName(absl::string_view name);

}  // namespace gradserve
