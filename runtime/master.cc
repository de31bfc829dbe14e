#include "runtime/master.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "graph/status.h"
#include "runtime/kernel.h"

namespace gradserve {

Device* DeviceSet::Find(absl::string_view name) const {
  for (const auto& d : devices_)
    if (d->name() == name) return d.get();
  return nullptr;
}

Device* DeviceSet::host() const {
  for (const auto& d : devices_)
    if (d->type() == kDeviceCpu) return d.get();
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

absl::StatusOr<Device*> PlaceNode(const Node& node, const DeviceSet& devices,
                                  const KernelRegistry& kernels) {
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

// The dtype a node's kernel is chosen by, for the fallback summary.
std::string KernelDType(const Node& node) {
  for (const char* attr : {"T", "dtype", "SrcT", "Tparams"}) {
    absl::StatusOr<DType> t = node.GetAttr<DType>(attr);
    if (t.ok()) return std::string(DTypeName(*t));
  }
  return "";
}

bool Contains(const std::vector<int>& v, int x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// Note [Copy nodes]: which memory holds each output and wants each input.
class Partitioner {
 public:
  Partitioner(const DeviceSet& devices, const KernelRegistry& kernels,
              const absl::flat_hash_map<std::pair<int, int>, Device*>& fed,
              const std::vector<Device*>& fetch_devices, ExecutionPlan& plan)
      : host_(devices.host()),
        kernels_(kernels),
        fed_(fed),
        fetch_devices_(fetch_devices),
        plan_(plan) {}

  absl::Status Run() {
    for (size_t i = 0; i < plan_.nodes.size(); ++i) {
      device_of_[plan_.nodes[i]->id()] = plan_.devices[i];
    }
    plan_.input_copies.resize(plan_.nodes.size());
    for (size_t i = 0; i < plan_.nodes.size(); ++i) {
      const Node& node = *plan_.nodes[i];
      Device* device = plan_.devices[i];
      const KernelDef* def = nullptr;
      if (device->type() != kDeviceCpu) {
        GS_ASSIGN_OR_RETURN(def, kernels_.Find(node, device->type()));
      }
      for (int j = 0; j < node.num_inputs(); ++j) {
        Device* want =
            (def == nullptr || def->HostMemoryInput(j, node.num_inputs())) ? host_ : device;
        GS_ASSIGN_OR_RETURN(int copy, CopyFor(node.input(j), want));
        plan_.input_copies[i].push_back(copy);
      }
    }
    for (size_t k = 0; k < plan_.fetches.size(); ++k) {
      Device* want =
          k < fetch_devices_.size() && fetch_devices_[k] != nullptr ? fetch_devices_[k] : host_;
      if (want->type() == kDeviceCpu) want = host_;
      GS_ASSIGN_OR_RETURN(int copy, CopyFor(plan_.fetches[k], want));
      plan_.fetch_copies.push_back(copy);
      plan_.fetch_devices.push_back(want);
    }
    return absl::OkStatus();
  }

 private:
  // The memory that holds `out` (a fed output: its feed device's).
  absl::StatusOr<Device*> MemoryOf(const NodeOut& out) {
    if (auto fed = fed_.find({out.node->id(), out.index}); fed != fed_.end()) return fed->second;
    auto it = device_of_.find(out.node->id());
    if (it == device_of_.end() || it->second->type() == kDeviceCpu) return host_;
    GS_ASSIGN_OR_RETURN(const KernelDef* def, kernels_.Find(*out.node, it->second->type()));
    return Contains(def->host_memory_outputs, out.index) ? host_ : it->second;
  }

  // The copy bringing `out` into `want`'s memory (made once), or -1.
  absl::StatusOr<int> CopyFor(const NodeOut& out, Device* want) {
    GS_ASSIGN_OR_RETURN(Device * from, MemoryOf(out));
    if (from == want) return -1;
    if (from != host_ && want != host_) {
      return absl::UnimplementedError(absl::StrCat("'", out.node->name(), ":", out.index,
                                                   "' would be copied from ", from->name(), " to ",
                                                   want->name(), "; a model runs on one GPU"));
    }
    const auto key = std::make_tuple(out.node->id(), out.index, want);
    auto [it, inserted] = copies_.try_emplace(key, static_cast<int>(plan_.copies.size()));
    if (inserted) plan_.copies.push_back(CopyStep{out, from, want});
    return it->second;
  }

  Device* host_;
  const KernelRegistry& kernels_;
  const absl::flat_hash_map<std::pair<int, int>, Device*>& fed_;
  const std::vector<Device*>& fetch_devices_;
  ExecutionPlan& plan_;
  absl::flat_hash_map<int, Device*> device_of_;
  absl::flat_hash_map<std::tuple<int, int, Device*>, int> copies_;
};

}  // namespace

absl::StatusOr<ExecutionPlan> BuildExecutionPlan(const Graph& graph, const DeviceSet& devices,
                                                 const RunSignature& signature,
                                                 const KernelRegistry* registry) {
  const KernelRegistry& kernels = registry != nullptr ? *registry : KernelRegistry::Global();
  if (devices.host() == nullptr) return absl::InternalError("a device set needs a CPU");
  ExecutionPlan plan;
  // Fed outputs, with the memory each is in.
  absl::flat_hash_map<std::pair<int, int>, Device*> fed;
  for (size_t i = 0; i < signature.feeds.size(); ++i) {
    GS_ASSIGN_OR_RETURN(NodeOut out, graph.FindOutput(signature.feeds[i]));
    Device* device = i < signature.feed_devices.size() && signature.feed_devices[i] != nullptr
                         ? signature.feed_devices[i]
                         : devices.host();
    if (device->type() == kDeviceCpu) device = devices.host();
    plan.feeds.push_back(out);
    plan.feed_devices.push_back(device);
    fed.emplace(std::make_pair(out.node->id(), out.index), device);
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
    for (const Node* c : node->control_inputs()) {
      // A node whose every output is fed does not run (a fed Placeholder
      // would fail): the control edge is met by the feed.
      bool all_fed = c->num_outputs() > 0;
      for (int i = 0; all_fed && i < c->num_outputs(); ++i) all_fed = fed.contains({c->id(), i});
      if (!all_fed) stack.push_back(c);
    }
  }

  // Place, in topological order (graph insertion order).
  std::map<std::string, int> fallbacks;
  const bool host_default = devices.default_device()->type() == kDeviceCpu;
  for (const auto& node : graph.nodes()) {
    if (!needed[node->id()]) continue;
    GS_ASSIGN_OR_RETURN(Device * device, PlaceNode(*node, devices, kernels));
    plan.nodes.push_back(node.get());
    plan.devices.push_back(device);
    // Only nodes the default device has no kernel for (not those asking for the CPU).
    if (!host_default && device->type() == kDeviceCpu &&
        !kernels.Find(*node, devices.default_device()->type()).ok()) {
      const std::string dtype = KernelDType(*node);
      ++fallbacks[dtype.empty() ? node->op() : absl::StrCat(node->op(), " (", dtype, ")")];
    }
  }
  for (const auto& [what, n] : fallbacks) plan.fallbacks.push_back(absl::StrCat(what, " x", n));

  // Partition: copies between memories (Note [Copy nodes]).
  GS_RETURN_IF_ERROR(Partitioner(devices, kernels, fed, signature.fetch_devices, plan).Run());
  return plan;
}

}  // namespace gradserve
