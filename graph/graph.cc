#include "graph/graph.h"

#include <algorithm>
#include <deque>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/shape_inference.h"
#include "graph/status.h"

namespace gradserve {

absl::StatusOr<TensorName> ParseTensorName(absl::string_view name) {
  TensorName out;
  if (!name.empty() && name[0] == '^') {
    out.node = name.substr(1);
    out.port = -1;
  } else if (size_t colon = name.rfind(':'); colon != absl::string_view::npos) {
    out.node = name.substr(0, colon);
    int port;
    if (!absl::SimpleAtoi(name.substr(colon + 1), &port) || port < 0) {
      return absl::InvalidArgumentError(absl::StrCat("bad tensor name '", name, "'"));
    }
    out.port = port;
  } else {
    out.node = name;
  }
  if (out.node.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("bad tensor name '", name, "'"));
  }
  return out;
}

namespace {

absl::Status NodeError(const NodeDef& def, absl::string_view message) {
  return absl::InvalidArgumentError(
      absl::StrCat("node '", def.name(), "' (", def.op(), "): ", message));
}

// Checks every attr of `def` against `op`: declared, well typed, allowed values;
// and that every attr without a default is present.
absl::Status ValidateAttrs(const NodeDef& def, const OpDef& op) {
  for (const auto& [name, value] : def.attr()) {
    // Attrs starting with '_' are annotations (TensorFlow's _output_shapes, _class).
    if (name.starts_with("_")) continue;
    const AttrDef* attr = op.FindAttr(name);
    if (attr == nullptr) return NodeError(def, absl::StrCat("unknown attr '", name, "'"));
    if (!AttrValueHasType(value, attr->type)) {
      return NodeError(def, absl::StrCat("attr '", name, "' must be ", AttrTypeName(attr->type)));
    }
    if (attr->type == AttrType::kType && !attr->allowed_types.empty()) {
      const DType t = static_cast<DType>(value.type());
      if (std::find(attr->allowed_types.begin(), attr->allowed_types.end(), t) ==
          attr->allowed_types.end()) {
        std::vector<std::string> names;
        for (DType a : attr->allowed_types) names.emplace_back(DTypeName(a));
        return NodeError(def, absl::StrCat("attr '", name, "' = ", DTypeName(t),
                                           " is not one of {", absl::StrJoin(names, ", "), "}"));
      }
    }
    if (attr->type == AttrType::kString && !attr->allowed_values.empty() &&
        std::find(attr->allowed_values.begin(), attr->allowed_values.end(), value.s()) ==
            attr->allowed_values.end()) {
      return NodeError(def, absl::StrCat("attr '", name, "' = \"", value.s(),
                                         "\" is not one of {",
                                         absl::StrJoin(attr->allowed_values, ", "), "}"));
    }
    if (attr->type == AttrType::kInt && value.i() < attr->minimum) {
      return NodeError(def, absl::StrCat("attr '", name, "' = ", value.i(),
                                         " is below the minimum ", attr->minimum));
    }
  }
  for (const AttrDef& attr : op.attrs) {
    if (!attr.default_value && !def.attr().contains(attr.name)) {
      return NodeError(def, absl::StrCat("missing required attr '", attr.name, "'"));
    }
  }
  return absl::OkStatus();
}

// Expands an op's arg list into one dtype per tensor, from the node's attrs.
absl::StatusOr<std::vector<DType>> ExpandArgTypes(const std::vector<ArgDef>& args,
                                                  const AttrView& attrs) {
  std::vector<DType> types;
  for (const ArgDef& arg : args) {
    if (!arg.type_list_attr.empty()) {
      GS_ASSIGN_OR_RETURN(std::vector<DType> list,
                          attrs.Get<std::vector<DType>>(arg.type_list_attr));
      types.insert(types.end(), list.begin(), list.end());
      continue;
    }
    DType t = arg.type;
    if (!arg.type_attr.empty()) {
      GS_ASSIGN_OR_RETURN(t, attrs.Get<DType>(arg.type_attr));
    }
    int64_t n = 1;
    if (!arg.number_attr.empty()) {
      GS_ASSIGN_OR_RETURN(n, attrs.Get<int64_t>(arg.number_attr));
    }
    types.insert(types.end(), n, t);
  }
  return types;
}

}  // namespace

absl::Status Graph::ResolveTypes(Node& node) const {
  const AttrView attrs = node.attrs();
  GS_ASSIGN_OR_RETURN(node.input_types_, ExpandArgTypes(node.op_def().inputs, attrs));
  GS_ASSIGN_OR_RETURN(node.output_types_, ExpandArgTypes(node.op_def().outputs, attrs));
  return absl::OkStatus();
}

absl::StatusOr<Node*> Graph::AddNode(NodeDef def) {
  if (def.name().empty()) return absl::InvalidArgumentError("a node has an empty name");
  if (by_name_.contains(def.name())) return NodeError(def, "duplicate node name");
  const OpDef* op = registry_->Find(def.op());
  if (op == nullptr) return NodeError(def, "unknown op (not registered in gradserve)");
  GS_RETURN_IF_ERROR(ValidateAttrs(def, *op));

  auto node = std::make_unique<Node>();
  node->id_ = static_cast<int>(nodes_.size());
  node->def_ = std::move(def);
  node->op_def_ = op;
  const NodeDef& d = node->def_;
  GS_RETURN_IF_ERROR(Annotate(ResolveTypes(*node), absl::StrCat("node '", d.name(), "'")));

  // Resolve inputs: data inputs come first, control inputs ("^x") after.
  for (int i = 0; i < d.input_size(); ++i) {
    absl::StatusOr<TensorName> parsed = ParseTensorName(d.input(i));
    if (!parsed.ok()) return NodeError(d, parsed.status().message());
    const TensorName tn = *parsed;
    Node* src = FindNode(tn.node);
    if (src == nullptr) {
      return NodeError(d, absl::StrCat("input ", i, " refers to unknown node '", tn.node, "'"));
    }
    if (tn.port < 0) {
      node->control_inputs_.push_back(src);
      continue;
    }
    if (!node->control_inputs_.empty()) {
      return NodeError(d, "data input after a control input");
    }
    if (tn.port >= src->num_outputs()) {
      return NodeError(d, absl::StrCat("input ", i, " '", d.input(i), "': node '", src->name(),
                                       "' has only ", src->num_outputs(), " outputs"));
    }
    node->inputs_.push_back({src, tn.port});
  }
  if (node->num_inputs() != static_cast<int>(node->input_types_.size())) {
    return NodeError(d, absl::StrCat("expects ", node->input_types_.size(),
                                     " inputs but has ", node->num_inputs()));
  }
  std::vector<Shape> in_shapes;
  std::vector<const Tensor*> in_values;
  for (int i = 0; i < node->num_inputs(); ++i) {
    const NodeOut& in = node->inputs_[i];
    const DType got = in.node->output_type(in.index);
    if (got != node->input_types_[i]) {
      return NodeError(d, absl::StrCat("input ", i, " ('", d.input(i), "') is ", DTypeName(got),
                                       " but the op expects ",
                                       DTypeName(node->input_types_[i])));
    }
    in_shapes.push_back(in.node->output_shape(in.index));
    in_values.push_back(in.index == 0 ? in.node->constant_value() : nullptr);
  }

  // Shape inference.
  InferenceContext ctx(*node, std::move(in_shapes), std::move(in_values));
  GS_RETURN_IF_ERROR(op->shape_fn(ctx));
  node->output_shapes_ = ctx.TakeOutputShapes();
  node->constant_value_ = ctx.TakeOutputValue();

  // Commit.
  Node* raw = node.get();
  for (int i = 0; i < raw->num_inputs(); ++i) {
    raw->inputs_[i].node->out_edges_.push_back({raw, raw->inputs_[i].index, i});
  }
  for (Node* c : raw->control_inputs_) {
    c->out_edges_.push_back({raw, OutEdge::kControlSlot, OutEdge::kControlSlot});
  }
  by_name_[raw->name()] = raw;
  def_order_.push_back(raw);
  nodes_.push_back(std::move(node));
  return raw;
}

absl::StatusOr<std::unique_ptr<Graph>> Graph::FromGraphDef(const GraphDef& graph_def,
                                                           const OpRegistry& registry) {
  auto graph = std::make_unique<Graph>(registry);
  graph->versions_ = graph_def.versions();
  const int n = graph_def.node_size();

  // Topologically sort by name (Kahn), so inputs are added before their users.
  absl::flat_hash_map<absl::string_view, int> index;
  for (int i = 0; i < n; ++i) {
    const NodeDef& def = graph_def.node(i);
    if (!index.emplace(def.name(), i).second) return NodeError(def, "duplicate node name");
  }
  std::vector<int> pending(n, 0);
  std::vector<std::vector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    const NodeDef& def = graph_def.node(i);
    for (const std::string& input : def.input()) {
      auto tn = ParseTensorName(input);
      if (!tn.ok()) return NodeError(def, tn.status().message());
      auto it = index.find(tn->node);
      if (it == index.end()) {
        return NodeError(def, absl::StrCat("input '", input, "' refers to unknown node '",
                                           tn->node, "'"));
      }
      ++pending[i];
      users[it->second].push_back(i);
    }
  }
  std::deque<int> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0) ready.push_back(i);
  std::vector<int> order;
  while (!ready.empty()) {
    const int i = ready.front();
    ready.pop_front();
    order.push_back(i);
    for (int u : users[i])
      if (--pending[u] == 0) ready.push_back(u);
  }
  if (static_cast<int>(order.size()) != n) {
    std::vector<std::string> in_cycle;
    for (int i = 0; i < n && in_cycle.size() < 8; ++i)
      if (pending[i] > 0) in_cycle.push_back(graph_def.node(i).name());
    return absl::InvalidArgumentError(absl::StrCat(
        "graph has a cycle through nodes: ", absl::StrJoin(in_cycle, ", ")));
  }

  std::vector<Node*> by_def_index(n);
  for (int i : order) {
    GS_ASSIGN_OR_RETURN(by_def_index[i], graph->AddNode(graph_def.node(i)));
  }
  graph->def_order_ = std::move(by_def_index);
  return graph;
}

GraphDef Graph::ToGraphDef() const {
  GraphDef out;
  *out.mutable_versions() = versions_;
  for (const Node* node : def_order_) *out.add_node() = node->def();
  return out;
}

Node* Graph::FindNode(absl::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

absl::StatusOr<NodeOut> Graph::FindOutput(absl::string_view tensor_name) const {
  GS_ASSIGN_OR_RETURN(TensorName tn, ParseTensorName(tensor_name));
  Node* node = FindNode(tn.node);
  if (node == nullptr) {
    return absl::NotFoundError(absl::StrCat("no node named '", tn.node, "' in the graph"));
  }
  if (tn.port < 0 || tn.port >= node->num_outputs()) {
    return absl::InvalidArgumentError(absl::StrCat("'", tensor_name, "': node '", tn.node,
                                                   "' has ", node->num_outputs(), " outputs"));
  }
  return NodeOut{node, tn.port};
}

}  // namespace gradserve
