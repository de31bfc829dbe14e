// The master's half of a run (TensorFlow's client -> master -> worker split):
// given a graph and a run signature (feeds, fetches, targets), prune the graph to
// the nodes the fetches and targets need, and place each on a device. The worker
// half (runtime/executor.h) then runs the plan.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "graph/graph.h"
#include "runtime/device.h"

namespace gradserve {

// The devices a session may place nodes on; the first is the default.
class DeviceSet {
 public:
  void Add(std::unique_ptr<Device> device) { devices_.push_back(std::move(device)); }
  Device* default_device() const { return devices_.front().get(); }
  Device* Find(absl::string_view name) const;
  const std::vector<std::unique_ptr<Device>>& devices() const { return devices_; }

 private:
  std::vector<std::unique_ptr<Device>> devices_;
};

struct RunSignature {
  std::vector<std::string> feeds;    // "node:port"
  std::vector<std::string> fetches;  // "node:port"
  std::vector<std::string> targets;  // node names, run for their effects
};

struct ExecutionPlan {
  // The nodes to run, in topological order.
  std::vector<const Node*> nodes;
  // Device of each node in `nodes` (same index).
  std::vector<Device*> devices;
  std::vector<NodeOut> feeds;    // same order as RunSignature::feeds
  std::vector<NodeOut> fetches;  // same order as RunSignature::fetches
};

// Prunes and places. Errors: unknown feed/fetch/target names (NotFound), a fetch
// or target whose subgraph needs an unfed Placeholder is left to run time (the
// Placeholder kernel reports it), no device with a kernel for a node (NotFound,
// naming op and dtype).
absl::StatusOr<ExecutionPlan> BuildExecutionPlan(const Graph& graph, const DeviceSet& devices,
                                                 const RunSignature& signature);

}  // namespace gradserve
