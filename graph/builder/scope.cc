#include "graph/builder/scope.h"

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {

std::string Output::name() const { return absl::StrCat(node->name(), ":", index); }

Scope::Scope(Graph* graph) : state_(std::make_shared<State>()) { state_->graph = graph; }

Scope Scope::WithName(std::string name) const {
  Scope s = *this;
  s.exact_name_ = std::move(name);
  return s;
}

Scope Scope::NewSubScope(std::string name) const {
  Scope s = *this;
  s.prefix_ = UniqueName(name);
  s.exact_name_.clear();
  return s;
}

Scope Scope::WithDevice(std::string device) const {
  Scope s = *this;
  s.device_ = std::move(device);
  return s;
}

Scope Scope::WithControlDependencies(std::vector<Output> deps) const {
  Scope s = *this;
  s.control_deps_.insert(s.control_deps_.end(), deps.begin(), deps.end());
  return s;
}

void Scope::UpdateStatus(const absl::Status& status) const {
  if (state_->status.ok()) state_->status = status;
}

std::string Scope::UniqueName(absl::string_view base) const {
  const std::string full = prefix_.empty() ? std::string(base) : absl::StrCat(prefix_, "/", base);
  int& count = state_->name_counts[full];
  std::string name = full;
  if (count == 0 && state_->graph->FindNode(full) == nullptr) {
    count = 1;
  } else {
    do {
      name = absl::StrCat(full, "_", count++);
    } while (state_->graph->FindNode(name) != nullptr);
  }
  return name;
}

Node* Scope::AddNode(absl::string_view op, const std::vector<Output>& inputs,
                     AttrMap attrs) const {
  if (!ok()) return nullptr;
  const OpDef* op_def = graph()->registry().Find(op);
  if (op_def == nullptr) {
    UpdateStatus(absl::NotFoundError(absl::StrCat("unknown op ", op)));
    return nullptr;
  }
  for (const Output& in : inputs) {
    if (!in.valid()) {
      UpdateStatus(absl::InvalidArgumentError(absl::StrCat("op ", op, ": an input is empty")));
      return nullptr;
    }
  }
  // Infer missing type attrs from the inputs, walking the arg list.
  size_t pos = 0;
  for (const ArgDef& arg : op_def->inputs) {
    int64_t count = 1;
    if (!arg.number_attr.empty()) {
      auto it = attrs.find(arg.number_attr);
      count = it != attrs.end() ? it->second.i() : 0;
    } else if (!arg.type_list_attr.empty()) {
      auto it = attrs.find(arg.type_list_attr);
      count = it != attrs.end() ? it->second.list().type_size() : 0;
    }
    if (!arg.type_attr.empty() && !attrs.contains(arg.type_attr) && count > 0 &&
        pos < inputs.size()) {
      attrs[arg.type_attr] = MakeAttr(inputs[pos].dtype());
    }
    pos += count;
  }

  NodeDef def;
  def.set_name(exact_name_.empty() ? UniqueName(op) : UniqueName(exact_name_));
  def.set_op(std::string(op));
  def.set_device(device_);
  for (const Output& in : inputs) def.add_input(in.name());
  for (const Output& dep : control_deps_) def.add_input(absl::StrCat("^", dep.node->name()));
  for (auto& [k, v] : attrs) (*def.mutable_attr())[k] = std::move(v);
  absl::StatusOr<Node*> node = graph()->AddNode(std::move(def));
  if (!node.ok()) {
    UpdateStatus(node.status());
    return nullptr;
  }
  return *node;
}

}  // namespace gradserve
