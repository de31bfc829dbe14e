// Executor: the worker's half of a run. Built once per ExecutionPlan (kernels are
// instantiated here), then Run() many times, concurrently.
//
// Note [Dataflow scheduling]: a node becomes ready when all its data and control
// inputs are done. The thread that finishes a node runs one of the nodes it made
// ready itself; further ready nodes that are expensive go to the inter-op pool,
// cheap ones stay on the same thread. So a chain of small ops runs on the calling
// thread with no hand-off (Session::Run overhead stays in the microseconds), and
// independent heavy branches run in parallel. On the first error no new node is
// started; Run() waits for the nodes in flight and returns the error, prefixed
// with the failing node's name.
//
// Tensors are released as soon as their last consumer has run. Copies between
// memories (Note [Copy nodes], runtime/master.h) are items of their own. A
// GPU kernel returns once its work is queued on the device's stream; the
// stream runs it in order, so a consumer queued later sees its result, and a
// copy to the host waits for it.
//
// Note [Device graphs]: a run on a GPU launches one kernel per node, each a
// few microseconds of host work; for a small model the launches, not the
// kernels, bound a batch. With RunOptions::use_device_graph the executor
// records the run's device work once per set of feed shapes (a CUDA graph:
// stream capture) and afterwards replays the recording as one launch. The
// first run at a shape runs as usual (kernels make their lasting state then:
// constants and variables move to the device); the second is captured and
// replayed; later ones replay. A capture records, it does not compute:
//   - feeds are copied into host buffers of the graph's own (pinned), which
//     the recorded copies read; fetches are recorded into host buffers the
//     graph owns and are copied out after each replay;
//   - the device memory the run allocates and frees is the graph's (graph
//     memory nodes), so addresses stay valid for every replay;
//   - host work (kernels on the CPU, shapes, placement) runs once, at capture;
//   - the variables the run reads are read where they were at capture. Each
//     replay reads them again first (ReadVariableOp only takes a reference)
//     and holds them while it runs: where a buffer moved (a variable
//     assigned a new tensor, a rollback), the graph is dropped, the run goes
//     the usual way and the next one captures again. In-place updates are
//     seen by the next replay, as by a normal run.
// So only plans whose result depends on nothing but the fed values and the
// variables' current values are recorded: one device besides the host; every
// copy to the device copies a fed value and every copy to the host is a
// fetch; no kernel reads a fed value in host memory; no node but
// ReadVariableOp (on the device) touches a variable. Other plans, and a capture that fails (a
// kernel that synchronizes, state made during the capture), run the usual way; RunMetadata says
// why. Replays at one shape are serialized (they share the graph's buffers); different shapes and
// normal runs go on alongside.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "runtime/kernel.h"
#include "runtime/master.h"

namespace gradserve {

struct RunOptions {
  // Record the run as a device graph and replay it (Note [Device graphs]).
  bool use_device_graph = false;
  // Session::Run: where each fetch is wanted, by device name, in fetch order
  // ("" or missing: host memory). A fetch left on a GPU can be fed to a later
  // run as it is (RunSignature::fetch_devices, runtime/master.h).
  std::vector<std::string> fetch_devices;
};

// What a run did with a device graph.
struct RunMetadata {
  enum class Graph {
    kNotRequested,  // RunOptions::use_device_graph was false
    kNotUsed,       // requested; the run went the usual way (see graph_note)
    kCaptured,      // this run recorded the graph (and replayed it)
    kReplayed,      // this run replayed a graph recorded before
  };
  Graph graph = Graph::kNotRequested;
  // kNotUsed: why ("first run at these shapes", the plan's or the capture's
  // reason, "variables moved: recapturing").
  std::string graph_note;
};

// Counters of an executor's device graphs.
struct DeviceGraphStats {
  int64_t graphs = 0;    // recorded and usable now
  int64_t captures = 0;  // successful captures (recaptures included)
  int64_t capture_failures = 0;
  int64_t replays = 0;
  std::string last_failure;  // the last failed capture's reason
};

class Executor {
 public:
  struct Options {
    // Runs expensive ready nodes in parallel; nullptr = everything inline.
    Eigen::ThreadPool* inter_op_pool = nullptr;
    ResourceMgr* resources = nullptr;  // required
    // Where kernels come from (nullptr: KernelRegistry::Global()); the plan
    // must have been built with the same registry.
    const KernelRegistry* kernels = nullptr;
  };

  static absl::StatusOr<std::unique_ptr<Executor>> Create(const ExecutionPlan& plan,
                                                          const Options& options);
  ~Executor();

  // `feeds` in the plan's feed order; fills `fetches` in the plan's fetch order.
  // Thread-safe. `metadata` may be null.
  absl::Status Run(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                   const RunOptions& options = {}, RunMetadata* metadata = nullptr) const;

  // Why this plan cannot be a device graph ("" when it can).
  const std::string& device_graph_unsupported() const { return graph_unsupported_; }
  DeviceGraphStats device_graph_stats() const ABSL_LOCKS_EXCLUDED(graphs_mu_);

 private:
  struct Item;
  struct RunState;
  // A variable a captured run read: its ReadVariableOp item, the handle it
  // read through, and where the value was (Note [Device graphs]).
  struct VarRead {
    int item;
    Tensor handle;
    const void* data;
    DType dtype;
    Shape shape;
  };

  // The device graph of one set of feed shapes.
  struct GraphEntry {
    absl::Mutex mu;                           // one capture or replay at a time
    bool warmed ABSL_GUARDED_BY(mu) = false;  // a usual run at these shapes succeeded
    int failures ABSL_GUARDED_BY(mu) = 0;     // failed captures
    std::string last_failure ABSL_GUARDED_BY(mu);
    std::vector<Tensor> inputs ABSL_GUARDED_BY(mu);   // host buffers the graph copies in from
    std::vector<Tensor> outputs ABSL_GUARDED_BY(mu);  // host buffers the graph copies out to
    std::vector<VarRead> reads ABSL_GUARDED_BY(mu);
    // Last: destroyed before the buffers it reads and writes.
    std::unique_ptr<DeviceGraph> graph ABSL_GUARDED_BY(mu);
  };

  Executor() = default;
  // The plan's items on `feeds`; `pool` runs expensive ready items (nullptr:
  // all on this thread); `reads` (capture) collects the variables read.
  absl::Status RunItems(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                        Eigen::ThreadPool* pool, std::vector<VarRead>* reads) const;
  absl::Status RunWithGraph(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                            RunMetadata* metadata) const;
  absl::Status Capture(GraphEntry& entry, const std::vector<Tensor>& feeds) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);
  // False (nothing run) when a variable moved since the capture.
  absl::StatusOr<bool> Replay(GraphEntry& entry, const std::vector<Tensor>& feeds,
                              std::vector<Tensor>* fetches) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(entry.mu);
  void CheckGraphSupport(const ExecutionPlan& plan);
  void RunFrom(RunState* state, int first) const;
  absl::Status Process(RunState* state, int item, absl::InlinedVector<int, 8>* ready) const;
  absl::Status ProcessNode(RunState* state, const Item& item,
                           absl::InlinedVector<int, 8>* ready) const;
  absl::Status ProcessCopy(RunState* state, const Item& item,
                           absl::InlinedVector<int, 8>* ready) const;
  // Releases `item`'s inputs and readies its consumers.
  void Finish(RunState* state, const Item& item, absl::InlinedVector<int, 8>* ready) const;

  Options options_;
  std::vector<CopyStep> copies_;  // Item::copy points into this
  std::vector<Item> items_;
  std::vector<int> roots_;
  int num_slots_ = 0;
  std::vector<int> slot_uses_;  // consumers of each slot (+1 if fetched or fed)
  std::vector<int> feed_slots_;
  std::vector<int> fetch_slots_;
  std::vector<bool> slot_fed_;

  // Note [Device graphs].
  Device* graph_device_ = nullptr;  // null when graph_unsupported_ is set
  std::string graph_unsupported_;
  mutable absl::Mutex graphs_mu_;
  // By feed dtypes and shapes; entries are never removed (at most kMaxGraphs).
  mutable absl::flat_hash_map<std::string, std::shared_ptr<GraphEntry>> graphs_
      ABSL_GUARDED_BY(graphs_mu_);
  mutable DeviceGraphStats graph_stats_ ABSL_GUARDED_BY(graphs_mu_);
};

}  // namespace gradserve
