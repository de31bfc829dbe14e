#include "runtime/master.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernel.h"

namespace gradserve {

Device* DeviceSet::Find(absl::string_view name) const {
  for (const auto& d : devices_)
    if (d->name() == name) return d.get();
  return nullptr;
}

namespace {

// Accepts "cpu:0", "/device:CPU:0" and "/job:x/replica:0/task:0/device:CPU:0".
std::string NormalizeDeviceName(absl::string_view requested) {
  if (size_t p = requested.rfind("device:"); p != absl::string_view::npos) {
    requested = requested.substr(p + 7);
  }
  std::string out(requested);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (out.starts_with("gpu:")) out = "cuda:" + out.substr(4);
  return out;
}

absl::StatusOr<Device*> PlaceNode(const Node& node, const DeviceSet& devices) {
  const KernelRegistry& kernels = KernelRegistry::Global();
  // Prefer the requested device, then the default, then any device with a kernel.
  std::vector<Device*> candidates;
  if (!node.requested_device().empty()) {
    if (Device* d = devices.Find(NormalizeDeviceName(node.requested_device()))) {
      candidates.push_back(d);
    }
  }
  candidates.push_back(devices.default_device());
  for (const auto& d : devices.devices()) candidates.push_back(d.get());
  absl::Status last;
  for (Device* d : candidates) {
    absl::StatusOr<const KernelDef*> def = kernels.Find(node, d->type());
    if (def.ok()) return d;
    last = def.status();
  }
  return absl::NotFoundError(
      absl::StrCat("node '", node.name(), "' cannot be placed: ", last.message()));
}

}  // namespace

absl::StatusOr<ExecutionPlan> BuildExecutionPlan(const Graph& graph, const DeviceSet& devices,
                                                 const RunSignature& signature) {
  ExecutionPlan plan;
  absl::flat_hash_set<std::pair<int, int>> fed;
  for (const std::string& name : signature.feeds) {
    GS_ASSIGN_OR_RETURN(NodeOut out, graph.FindOutput(name));
    plan.feeds.push_back(out);
    fed.insert({out.node->id(), out.index});
  }
  std::vector<const Node*> stack;
  for (const std::string& name : signature.fetches) {
    GS_ASSIGN_OR_RETURN(NodeOut out, graph.FindOutput(name));
    plan.fetches.push_back(out);
    if (!fed.contains({out.node->id(), out.index})) stack.push_back(out.node);
  }
  for (const std::string& name : signature.targets) {
    const Node* node = graph.FindNode(name);
    if (node == nullptr) {
      return absl::NotFoundError(absl::StrCat("target '", name, "' is not a node of the graph"));
    }
    stack.push_back(node);
  }

  // Prune: walk back from fetches and targets, not through fed outputs.
  std::vector<bool> needed(graph.num_nodes(), false);
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    if (needed[node->id()]) continue;
    needed[node->id()] = true;
    for (const NodeOut& in : node->inputs()) {
      if (!fed.contains({in.node->id(), in.index})) stack.push_back(in.node);
    }
    for (const Node* c : node->control_inputs()) stack.push_back(c);
  }

  // Place, in topological order (graph insertion order).
  for (const auto& node : graph.nodes()) {
    if (!needed[node->id()]) continue;
    GS_ASSIGN_OR_RETURN(Device * device, PlaceNode(*node, devices));
    plan.nodes.push_back(node.get());
    plan.devices.push_back(device);
  }
  return plan;
}

}  // namespace gradserve
