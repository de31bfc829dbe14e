// The C++ builder API: a Scope adds nodes to a Graph, and op functions in
// graph/builder/ops.h wrap it, e.g.
//
//   Graph g;
//   Scope s(&g);
//   Output x = ops::Placeholder(s, DType::kFloat, Shape{-1, 64});
//   Output w = ops::Const(s, weights);
//   Output y = ops::MatMul(s.WithName("logits"), x, w);
//   GS_RETURN_IF_ERROR(s.status());
//
// As in TensorFlow's C++ API, errors accumulate in the scope: after the first
// failure further op functions return an empty Output and status() reports it.
// Copies of a Scope share the graph, the status and the name counters.
// Not thread-safe.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "graph/attr.h"
#include "graph/graph.h"

namespace gradserve {

// One output of a node in a graph being built.
struct Output {
  Output() = default;
  Output(Node* n, int i = 0) : node(n), index(i) {}  // NOLINT: implicit by design
  Output(NodeOut o) : node(o.node), index(o.index) {}  // NOLINT

  Node* node = nullptr;
  int index = 0;

  bool valid() const { return node != nullptr; }
  DType dtype() const { return node->output_type(index); }
  const Shape& shape() const { return node->output_shape(index); }
  // "node:index" as used in feeds, fetches and signatures.
  std::string name() const;
};

using AttrMap = std::map<std::string, AttrValue>;

class Scope {
 public:
  explicit Scope(Graph* graph);

  // The next node gets exactly this name (within the current prefix).
  Scope WithName(std::string name) const;
  // Nodes get names under "prefix/".
  Scope NewSubScope(std::string name) const;
  Scope WithDevice(std::string device) const;
  Scope WithControlDependencies(std::vector<Output> deps) const;

  Graph* graph() const { return state_->graph; }
  bool ok() const { return state_->status.ok(); }
  const absl::Status& status() const { return state_->status; }
  void UpdateStatus(const absl::Status& status) const;

  // Adds a node of `op` with `inputs` (list args flattened in order) and `attrs`.
  // Type attrs not given are inferred from the inputs. Returns nullptr (and
  // records the error) on failure or if the scope already failed.
  Node* AddNode(absl::string_view op, const std::vector<Output>& inputs,
                AttrMap attrs = {}) const;

  // A name unique in the graph derived from `base` and the current prefix.
  std::string UniqueName(absl::string_view base) const;

 private:
  struct State {
    Graph* graph;
    absl::Status status;
    std::map<std::string, int> name_counts;
  };
  std::shared_ptr<State> state_;
  std::string prefix_;
  std::string exact_name_;
  std::string device_;
  std::vector<Output> control_deps_;
};

}  // namespace gradserve
