// Session: runs a Graph. Run(feeds, fetches, targets) prunes the graph to what
// the fetches and targets need, places it, builds an executor for that
// signature once (cached), and runs it.
//
// Thread safety: Run() may be called from many threads at once; the executors
// and variables are shared, each run has its own tensors. Variables (VarHandleOp)
// live in the session's ResourceMgr and persist across runs.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/node_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "graph/graph.h"
#include "runtime/executor.h"
#include "runtime/master.h"
#include "runtime/resource.h"

namespace gradserve {

struct SessionOptions {
  // Threads one op may use (Eigen pool, oneDNN); 0 = hardware threads.
  int intra_op_threads = 0;
  // Threads running independent expensive ops at once; 0 = hardware threads,
  // 1 = run every op on the calling thread.
  int inter_op_threads = 0;
  // Set: the default device is this GPU (cuda:N); nodes without a CUDA kernel
  // fall back to the CPU, with copies between them (Note [Copy nodes]).
  // Create fails with FailedPrecondition when the GPU is not there.
  std::optional<GpuOptions> gpu;
  // Called once per new executor with its plan (placement, copies and
  // fallbacks), e.g. to log them; may be empty.
  std::function<void(const RunSignature&, const ExecutionPlan&)> on_placement;
};

using FeedList = std::vector<std::pair<std::string, Tensor>>;

class Session {
 public:
  static absl::StatusOr<std::unique_ptr<Session>> Create(const GraphDef& graph_def,
                                                         const SessionOptions& options = {});
  static absl::StatusOr<std::unique_ptr<Session>> Create(std::unique_ptr<Graph> graph,
                                                         const SessionOptions& options = {});
  ~Session();

  // Feeds name outputs ("x:0" or "x"); fetches likewise; targets name nodes run
  // for their effect. Feeds are host tensors, or tensors in the memory of one
  // of the session's devices (a fetch a run left there: RunOptions::
  // fetch_devices). Errors: NotFound for unknown names, InvalidArgument for a
  // feed of the wrong dtype, an incompatible shape or on a device the session
  // does not have, and any kernel error prefixed with its node's name.
  absl::Status Run(const FeedList& feeds, const std::vector<std::string>& fetches,
                   const std::vector<std::string>& targets, std::vector<Tensor>* outputs);
  // The same, as a device graph when options ask for one (Note [Device
  // graphs], runtime/executor.h); `metadata` (may be null) says what happened.
  absl::Status Run(const FeedList& feeds, const std::vector<std::string>& fetches,
                   const std::vector<std::string>& targets, std::vector<Tensor>* outputs,
                   const RunOptions& options, RunMetadata* metadata);
  // The device graphs of all this session's executors.
  DeviceGraphStats device_graph_stats() const ABSL_LOCKS_EXCLUDED(mu_);

  const Graph& graph() const { return *graph_; }
  ResourceMgr& resources() { return resources_; }
  const DeviceSet& devices() const { return devices_; }

 private:
  Session() = default;
  absl::StatusOr<std::shared_ptr<const Executor>> GetExecutor(
      const FeedList& feeds, const std::vector<std::string>& fetches,
      const std::vector<std::string>& targets, const std::vector<std::string>& fetch_devices)
      ABSL_LOCKS_EXCLUDED(mu_);

  std::unique_ptr<Graph> graph_;
  DeviceSet devices_;
  ResourceMgr resources_;
  std::unique_ptr<Eigen::ThreadPool> inter_op_pool_;
  std::function<void(const RunSignature&, const ExecutionPlan&)> on_placement_;

  struct CachedExecutor {
    std::shared_ptr<const Executor> executor;
    std::vector<NodeOut> feeds;  // for validating feed dtypes and shapes
  };
  mutable absl::Mutex mu_;
  // node_hash_map: entries keep their address (read after the lock is released).
  absl::node_hash_map<std::string, CachedExecutor> executors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace gradserve
