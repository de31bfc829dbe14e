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
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "runtime/kernel.h"
#include "runtime/master.h"


namespace gradserve {

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
  // Thread-safe.
  absl::Status Run(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches) const;

 private:
  struct Item;
  struct RunState;
  Executor() = default;
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
};

}  // namespace gradserve
