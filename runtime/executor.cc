#include "runtime/executor.h"

#include <atomic>
#include <new>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "graph/status.h"
#include "unsupported/Eigen/CXX11/ThreadPool"

namespace gradserve {

struct Executor::Item {
  const Node* node;  // nullptr for a copy (Note [Copy nodes])
  std::unique_ptr<OpKernel> kernel;
  Device* device;
  const CopyStep* copy = nullptr;
  std::vector<int> input_slots;  // slot of each data input
  int output_base;               // slot of output 0
  std::vector<int> consumers;    // items waiting on this one (one entry per edge)
  int pending;                   // data + control inputs inside the plan
  bool expensive;
  bool activate = false;  // a device (GPU) to make current before the kernel runs
};

struct Executor::RunState {
  explicit RunState(const Executor& e)
      : values(e.num_slots_),
        pending(new std::atomic<int>[e.items_.size()]),
        uses(new std::atomic<int>[e.num_slots_]) {
    for (size_t i = 0; i < e.items_.size(); ++i) {
      pending[i].store(e.items_[i].pending, std::memory_order_relaxed);
    }
    for (int s = 0; s < e.num_slots_; ++s)
      uses[s].store(e.slot_uses_[s], std::memory_order_relaxed);
  }
  std::vector<Tensor> values;
  std::unique_ptr<std::atomic<int>[]> pending;
  std::unique_ptr<std::atomic<int>[]> uses;
  std::atomic<int> outstanding{0};
  std::atomic<bool> failed{false};
  absl::Mutex mu;
  absl::Status status ABSL_GUARDED_BY(mu);
  absl::Notification done;
};

Executor::~Executor() = default;

absl::StatusOr<std::unique_ptr<Executor>> Executor::Create(const ExecutionPlan& plan,
                                                           const Options& options) {
  if (options.resources == nullptr) return absl::InternalError("executor needs a ResourceMgr");
  std::unique_ptr<Executor> ex(new Executor);
  ex->options_ = options;
  const KernelRegistry& kernels =
      options.kernels != nullptr ? *options.kernels : KernelRegistry::Global();

  absl::flat_hash_map<int, int> item_of;  // node id -> item index
  absl::flat_hash_map<int, int> base_of;  // node id -> output_base
  const int num_nodes = static_cast<int>(plan.nodes.size());
  const int num_copies = static_cast<int>(plan.copies.size());
  ex->copies_ = plan.copies;
  ex->items_.resize(num_nodes + num_copies);
  int slots = 0;
  for (int i = 0; i < num_nodes; ++i) {
    const Node* node = plan.nodes[i];
    item_of[node->id()] = i;
    base_of[node->id()] = slots;
    slots += node->num_outputs();
  }
  // Fed outputs of nodes outside the plan still need slots.
  for (const NodeOut& f : plan.feeds) {
    if (!base_of.contains(f.node->id())) {
      base_of[f.node->id()] = slots;
      slots += f.node->num_outputs();
    }
  }
  const int copy_base = slots;  // copy c writes slot copy_base + c
  slots += num_copies;
  ex->num_slots_ = slots;
  ex->slot_uses_.assign(slots, 0);
  ex->slot_fed_.assign(slots, false);
  for (const NodeOut& f : plan.feeds) {
    const int slot = base_of[f.node->id()] + f.index;
    ex->feed_slots_.push_back(slot);
    ex->slot_fed_[slot] = true;
    ex->slot_uses_[slot] += 1;  // the caller's tensor stays referenced by the caller anyway
  }
  for (size_t k = 0; k < plan.fetches.size(); ++k) {
    const NodeOut& f = plan.fetches[k];
    const int copy = k < plan.fetch_copies.size() ? plan.fetch_copies[k] : -1;
    const int slot = copy >= 0 ? copy_base + copy : base_of[f.node->id()] + f.index;
    ex->fetch_slots_.push_back(slot);
    ex->slot_uses_[slot] += 1;
  }

  // Item `consumer` reads `slot`, written by item `producer` (-1: fed or
  // outside the plan).
  auto connect = [&ex](int consumer, int slot, int producer) {
    Item& item = ex->items_[consumer];
    item.input_slots.push_back(slot);
    ex->slot_uses_[slot] += 1;
    if (producer >= 0 && !ex->slot_fed_[slot]) {
      ex->items_[producer].consumers.push_back(consumer);
      ++item.pending;
    }
  };
  auto producer_of = [&item_of](const NodeOut& out) {
    auto it = item_of.find(out.node->id());
    return it == item_of.end() ? -1 : it->second;
  };

  for (int c = 0; c < num_copies; ++c) {
    const CopyStep& copy = ex->copies_[c];
    Item& item = ex->items_[num_nodes + c];
    item.node = nullptr;
    item.copy = &copy;
    item.device = copy.to->type() == kDeviceCpu ? copy.from : copy.to;
    item.output_base = copy_base + c;
    item.pending = 0;
    // A copy to the host waits for the device; one to a device only queues.
    item.expensive = copy.to->type() == kDeviceCpu;
    connect(num_nodes + c, base_of[copy.src.node->id()] + copy.src.index, producer_of(copy.src));
  }
  for (int i = 0; i < num_nodes; ++i) {
    const Node* node = plan.nodes[i];
    Item& item = ex->items_[i];
    item.node = node;
    item.device = plan.devices[i];
    item.output_base = base_of[node->id()];
    item.pending = 0;
    GS_ASSIGN_OR_RETURN(item.kernel, kernels.CreateKernel(*node, item.device->type()));
    item.expensive = item.kernel->IsExpensive();
    item.activate = item.device->type() != kDeviceCpu;
    for (int j = 0; j < node->num_inputs(); ++j) {
      const int copy =
          i < static_cast<int>(plan.input_copies.size()) ? plan.input_copies[i][j] : -1;
      if (copy >= 0) {
        connect(i, copy_base + copy, num_nodes + copy);
      } else {
        const NodeOut& in = node->input(j);
        connect(i, base_of[in.node->id()] + in.index, producer_of(in));
      }
    }
    for (const Node* c : node->control_inputs()) {
      auto it = item_of.find(c->id());
      if (it != item_of.end()) {
        ex->items_[it->second].consumers.push_back(i);
        ++item.pending;
      }
    }
  }
  for (int i = 0; i < num_nodes + num_copies; ++i) {
    if (ex->items_[i].pending == 0) ex->roots_.push_back(i);
  }
  return ex;
}

absl::Status Executor::Process(RunState* state, int index,
                               absl::InlinedVector<int, 8>* ready) const {
  const Item& item = items_[index];
  // Tensor's constructor throws std::bad_alloc when an allocator has no
  // memory left (a GPU's, most likely): the run fails, the process goes on.
  try {
    return item.copy != nullptr ? ProcessCopy(state, item, ready) : ProcessNode(state, item, ready);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(
        absl::StrCat(item.copy != nullptr
                         ? absl::StrCat("copy of '", item.copy->src.node->name(), ":",
                                        item.copy->src.index, "' to ", item.copy->to->name())
                         : absl::StrCat("node '", item.node->name(), "' (", item.node->op(), ")"),
                     ": out of memory on ", item.device->name()));
  }
}

absl::Status Executor::ProcessNode(RunState* state, const Item& item,
                                   absl::InlinedVector<int, 8>* ready) const {
  OpKernelContext ctx(item.device, options_.resources, item.node->num_outputs());
  absl::InlinedVector<const Tensor*, 4> inputs;
  absl::InlinedVector<Tensor*, 4> owned;
  for (int slot : item.input_slots) {
    Tensor& t = state->values[slot];
    if (!t.initialized()) {
      return absl::InternalError(
          absl::StrCat("node '", item.node->name(), "': an input was never produced"));
    }
    inputs.push_back(&t);
    // This run holds the last reference when this item is the slot's last use.
    owned.push_back(state->uses[slot].load(std::memory_order_acquire) == 1 ? &t : nullptr);
  }
  ctx.set_inputs(std::move(inputs));
  ctx.set_forwardable(std::move(owned));
  absl::Status status = item.activate ? item.device->Activate() : absl::OkStatus();
  if (status.ok()) status = item.kernel->Compute(ctx);
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat("node '", item.node->name(), "' (",
                                                    item.node->op(), "): ", status.message()));
  }
  auto& outs = ctx.outputs();
  for (int i = 0; i < item.node->num_outputs(); ++i) {
    const int slot = item.output_base + i;
    if (slot_fed_[slot]) continue;
    if (outs[i].initialized() && outs[i].dtype() != item.node->output_type(i)) {
      return absl::InternalError(absl::StrCat("node '", item.node->name(), "' produced ",
                                              DTypeName(outs[i].dtype()), " for output ", i,
                                              ", declared ", DTypeName(item.node->output_type(i))));
    }
    state->values[slot] = std::move(outs[i]);
  }
  Finish(state, item, ready);
  return absl::OkStatus();
}

void Executor::Finish(RunState* state, const Item& item, absl::InlinedVector<int, 8>* ready) const {
  // Release inputs whose last consumer this was.
  for (int slot : item.input_slots) {
    if (state->uses[slot].fetch_sub(1, std::memory_order_acq_rel) == 1) {
      state->values[slot] = Tensor();
    }
  }
  for (int c : item.consumers) {
    if (state->pending[c].fetch_sub(1, std::memory_order_acq_rel) == 1) ready->push_back(c);
  }
}

absl::Status Executor::ProcessCopy(RunState* state, const Item& item,
                                   absl::InlinedVector<int, 8>* ready) const {
  const CopyStep& copy = *item.copy;
  const Tensor& in = state->values[item.input_slots[0]];
  auto where = [&copy] {
    return absl::StrCat("copy of '", copy.src.node->name(), ":", copy.src.index, "' from ",
                        copy.from->name(), " to ", copy.to->name());
  };
  if (!in.initialized()) return absl::InternalError(absl::StrCat(where(), ": no value"));
  absl::StatusOr<Tensor> out =
      copy.to->type() == kDeviceCpu ? copy.from->CopyToHost(in) : copy.to->CopyFromHost(in);
  if (!out.ok()) {
    return absl::Status(out.status().code(), absl::StrCat(where(), ": ", out.status().message()));
  }
  state->values[item.output_base] = *std::move(out);
  Finish(state, item, ready);
  return absl::OkStatus();
}

void Executor::RunFrom(RunState* state, int first) const {
  absl::InlinedVector<int, 8> queue = {first};
  absl::InlinedVector<int, 8> ready;
  while (!queue.empty()) {
    const int index = queue.back();
    queue.pop_back();
    ready.clear();
    if (!state->failed.load(std::memory_order_acquire)) {
      absl::Status status = Process(state, index, &ready);
      if (!status.ok()) {
        absl::MutexLock lock(&state->mu);
        if (state->status.ok()) state->status = std::move(status);
        state->failed.store(true, std::memory_order_release);
        ready.clear();
      }
    }
    // Keep the first ready node (and every cheap one) on this thread.
    state->outstanding.fetch_add(static_cast<int>(ready.size()), std::memory_order_relaxed);
    for (size_t i = 0; i < ready.size(); ++i) {
      const int r = ready[i];
      if (i > 0 && items_[r].expensive && options_.inter_op_pool != nullptr) {
        options_.inter_op_pool->Schedule([this, state, r] { RunFrom(state, r); });
      } else {
        queue.push_back(r);
      }
    }
    if (state->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) state->done.Notify();
  }
}

absl::Status Executor::Run(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches) const {
  if (feeds.size() != feed_slots_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", feed_slots_.size(), " feeds, got ", feeds.size()));
  }
  RunState state(*this);
  for (size_t i = 0; i < feeds.size(); ++i) state.values[feed_slots_[i]] = feeds[i];
  if (!roots_.empty()) {
    state.outstanding.store(static_cast<int>(roots_.size()), std::memory_order_relaxed);
    for (size_t i = 1; i < roots_.size(); ++i) {
      const int r = roots_[i];
      if (items_[r].expensive && options_.inter_op_pool != nullptr) {
        options_.inter_op_pool->Schedule([this, &state, r] { RunFrom(&state, r); });
      } else {
        RunFrom(&state, r);
      }
    }
    RunFrom(&state, roots_[0]);
    state.done.WaitForNotification();
  }
  {
    absl::MutexLock lock(&state.mu);
    GS_RETURN_IF_ERROR(state.status);
  }
  fetches->clear();
  fetches->reserve(fetch_slots_.size());
  for (int slot : fetch_slots_) {
    if (!state.values[slot].initialized()) {
      return absl::InternalError("a fetched tensor was not produced");
    }
    fetches->push_back(state.values[slot]);
  }
  return absl::OkStatus();
}

}  // namespace gradserve
