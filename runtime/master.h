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
#include "runtime/kernel.h"

namespace gradserve {

// The devices a session may place nodes on; the first is the default. A set
// always holds the host CPU (whose memory is "host memory").
class DeviceSet {
 public:
  void Add(std::unique_ptr<Device> device) { devices_.push_back(std::move(device)); }
  Device* default_device() const { return devices_.front().get(); }
  Device* Find(absl::string_view name) const;
  // The first CPU device: host memory and the fallback for nodes without a
  // kernel on the default device.
  Device* host() const;
  const std::vector<std::unique_ptr<Device>>& devices() const { return devices_; }

 private:
  std::vector<std::unique_ptr<Device>> devices_;
};

struct RunSignature {
  std::vector<std::string> feeds;    // "node:port"
  std::vector<std::string> fetches;  // "node:port"
  std::vector<std::string> targets;  // node names, run for their effects
  // Where each feed lives and where each fetch is wanted (TensorFlow's
  // CallableOptions feed_devices/fetch_devices), same order as feeds and
  // fetches; empty, or nullptr entries: host memory. A fetch wanted on a
  // device whose memory already holds it is not copied, so a tensor one run
  // leaves on a GPU (a gradient) can be fed to the next without crossing to
  // the host.
  std::vector<Device*> feed_devices;
  std::vector<Device*> fetch_devices;
};

// Note [Copy nodes]: the partitioner (TensorFlow's Send/Recv pairs, within
// one process) puts an explicit copy on every edge whose tensor lives in one
// memory and is wanted in another: a node's outputs live in its device's
// memory, except the outputs its kernel writes on the host (KernelDef::
// host_memory_outputs: Shape, resource handles); a node wants its inputs in
// its device's memory, except its host-memory inputs (axes, shapes). Fed
// tensors are in host memory and fetches are returned there, unless the
// signature says otherwise (RunSignature::feed_devices, fetch_devices). A copy
// runs as a node of its own (the executor schedules it like any other), and
// one copy serves every consumer that wants the same tensor in the same
// memory.
struct CopyStep {
  NodeOut src;   // the producing output (or a fed one)
  Device* from;  // whose memory holds it (the host CPU for host memory)
  Device* to;    // whose memory it is copied into
};

struct ExecutionPlan {
  // The nodes to run, in topological order.
  std::vector<const Node*> nodes;
  // Device of each node in `nodes` (same index).
  std::vector<Device*> devices;
  std::vector<NodeOut> feeds;  // same order as RunSignature::feeds
  // Whose memory each feed is in (the host CPU for host memory).
  std::vector<Device*> feed_devices;
  std::vector<NodeOut> fetches;  // same order as RunSignature::fetches
  std::vector<CopyStep> copies;
  // input_copies[i][j]: the copy that feeds input j of nodes[i], or -1.
  std::vector<std::vector<int>> input_copies;
  // fetch_copies[k]: the copy that brings fetch k to the host (or to its
  // fetch device), or -1.
  std::vector<int> fetch_copies;
  // Whose memory each fetch is returned in (the host CPU for host memory).
  std::vector<Device*> fetch_devices;
  // Nodes placed on the host CPU though the default device is another one,
  // because they have no kernel there: one line per op and dtype with a count,
  // e.g. "Pack (int32) x2".
  std::vector<std::string> fallbacks;
};

// Prunes and places. Errors: unknown feed/fetch/target names (NotFound), a fetch
// or target whose subgraph needs an unfed Placeholder is left to run time (the
// Placeholder kernel reports it), no device with a kernel for a node (NotFound,
// naming op and dtype). Kernels come from `kernels` (default: every kernel
// compiled in).
absl::StatusOr<ExecutionPlan> BuildExecutionPlan(const Graph& graph, const DeviceSet& devices,
                                                 const RunSignature& signature,
                                                 const KernelRegistry* kernels = nullptr);

}  // namespace gradserve
