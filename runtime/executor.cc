#include "runtime/executor.h"

#include <atomic>
#include <cstring>
#include <new>
#include <optional>

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

namespace {

constexpr size_t kMaxGraphs = 64;       // feed shapes with a graph entry
constexpr int kMaxCaptureFailures = 3;  // per entry; then its runs go the usual way

}  // namespace

struct Executor::RunState {
  RunState(const Executor& e, Eigen::ThreadPool* pool, std::vector<VarRead>* reads)
      : pool(pool),
        reads(reads),
        values(e.num_slots_),
        pending(new std::atomic<int>[e.items_.size()]),
        uses(new std::atomic<int>[e.num_slots_]) {
    for (size_t i = 0; i < e.items_.size(); ++i) {
      pending[i].store(e.items_[i].pending, std::memory_order_relaxed);
    }
    for (int s = 0; s < e.num_slots_; ++s)
      uses[s].store(e.slot_uses_[s], std::memory_order_relaxed);
  }
  Eigen::ThreadPool* const pool;      // nullptr: every item on the calling thread
  std::vector<VarRead>* const reads;  // set while capturing
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
  ex->CheckGraphSupport(plan);
  return ex;
}

void Executor::CheckGraphSupport(const ExecutionPlan& plan) {
  auto unsupported = [this](auto&&... why) {
    graph_device_ = nullptr;
    graph_unsupported_ = absl::StrCat(why...);
  };
  Device* device = nullptr;
  for (Device* d : plan.devices) {
    if (d->type() == kDeviceCpu || d == device) continue;
    if (device != nullptr) return unsupported("nodes run on ", device->name(), " and ", d->name());
    device = d;
  }
  if (device == nullptr) return unsupported("every node runs on the host");
  if (!device->SupportsGraphs()) return unsupported(device->name(), " has no device graphs");
  for (size_t i = 0; i < plan.feeds.size(); ++i) {
    if (i < plan.feed_devices.size() && plan.feed_devices[i]->type() != kDeviceCpu) {
      return unsupported("feed '", plan.feeds[i].node->name(), ":", plan.feeds[i].index, "' is in ",
                         plan.feed_devices[i]->name(),
                         " memory (a graph copies in host feeds only)");
    }
  }
  for (size_t k = 0; k < plan.fetches.size(); ++k) {
    if (k < plan.fetch_devices.size() && plan.fetch_devices[k]->type() != kDeviceCpu) {
      return unsupported("fetch '", plan.fetches[k].node->name(), ":", plan.fetches[k].index,
                         "' is wanted in ", plan.fetch_devices[k]->name(),
                         " memory (a graph copies out to the host only)");
    }
  }
  const int num_nodes = static_cast<int>(plan.nodes.size());
  for (size_t c = 0; c < plan.copies.size(); ++c) {
    const CopyStep& copy = plan.copies[c];
    const Item& item = items_[num_nodes + c];
    if (copy.to->type() != kDeviceCpu) {
      if (!slot_fed_[item.input_slots[0]]) {
        return unsupported("'", copy.src.node->name(), ":", copy.src.index, "' is copied to ",
                           copy.to->name(), " but not fed (a graph copies in fed values only)");
      }
    } else if (!item.consumers.empty()) {
      return unsupported("'", copy.src.node->name(), ":", copy.src.index,
                         "' is copied to the host in the middle of the run");
    }
  }
  for (int i = 0; i < num_nodes; ++i) {
    const Item& item = items_[i];
    const Node& node = *item.node;
    for (int j = 0; j < node.num_inputs(); ++j) {
      if (node.input_type(j) == DType::kResource &&
          (node.op() != "ReadVariableOp" || item.device != device)) {
        return unsupported("'", node.name(), "' (", node.op(), ") on ", item.device->name(),
                           " uses a variable (a graph only reads variables, on ", device->name(),
                           ")");
      }
    }
    // A fed value read in host memory (by a host kernel, or as a device
    // kernel's host-memory argument) would be read once, at capture.
    for (int slot : item.input_slots) {
      if (slot_fed_[slot]) {
        return unsupported("'", node.name(), "' (", node.op(), ") on ", item.device->name(),
                           " reads a fed value in host memory");
      }
    }
  }
  graph_device_ = device;
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
  if (state->reads != nullptr && item.device == graph_device_ &&
      item.node->op() == "ReadVariableOp" && outs[0].initialized()) {
    state->reads->push_back(VarRead{.item = static_cast<int>(&item - items_.data()),
                                    .handle = ctx.input(0),
                                    .data = outs[0].raw_data(),
                                    .dtype = outs[0].dtype(),
                                    .shape = outs[0].shape()});
  }
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
      if (i > 0 && items_[r].expensive && state->pool != nullptr) {
        state->pool->Schedule([this, state, r] { RunFrom(state, r); });
      } else {
        queue.push_back(r);
      }
    }
    if (state->outstanding.fetch_sub(1, std::memory_order_acq_rel) == 1) state->done.Notify();
  }
}

absl::Status Executor::Run(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                           const RunOptions& options, RunMetadata* metadata) const {
  if (feeds.size() != feed_slots_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected ", feed_slots_.size(), " feeds, got ", feeds.size()));
  }
  if (options.use_device_graph) return RunWithGraph(feeds, fetches, metadata);
  if (metadata != nullptr) *metadata = RunMetadata{};
  return RunItems(feeds, fetches, options_.inter_op_pool, nullptr);
}

absl::Status Executor::RunItems(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                                Eigen::ThreadPool* pool, std::vector<VarRead>* reads) const {
  RunState state(*this, pool, reads);
  for (size_t i = 0; i < feeds.size(); ++i) state.values[feed_slots_[i]] = feeds[i];
  if (!roots_.empty()) {
    state.outstanding.store(static_cast<int>(roots_.size()), std::memory_order_relaxed);
    for (size_t i = 1; i < roots_.size(); ++i) {
      const int r = roots_[i];
      if (items_[r].expensive && pool != nullptr) {
        pool->Schedule([this, &state, r] { RunFrom(&state, r); });
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

// -- Note [Device graphs] -----------------------------------------------------------

absl::Status Executor::RunWithGraph(const std::vector<Tensor>& feeds, std::vector<Tensor>* fetches,
                                    RunMetadata* metadata) const {
  RunMetadata unused;
  RunMetadata& md = metadata != nullptr ? *metadata : unused;
  md = RunMetadata{.graph = RunMetadata::Graph::kNotUsed};
  if (graph_device_ == nullptr) {
    md.graph_note = graph_unsupported_;
    return RunItems(feeds, fetches, options_.inter_op_pool, nullptr);
  }
  std::string key;
  for (const Tensor& f : feeds)
    absl::StrAppend(&key, DTypeName(f.dtype()), f.shape().DebugString());
  std::shared_ptr<GraphEntry> entry;
  {
    absl::MutexLock lock(&graphs_mu_);
    auto it = graphs_.find(key);
    if (it != graphs_.end()) {
      entry = it->second;
    } else if (graphs_.size() < kMaxGraphs) {
      entry = graphs_.emplace(key, std::make_shared<GraphEntry>()).first->second;
    }
  }
  if (entry == nullptr) {
    md.graph_note =
        absl::StrCat("this executor has graphs for ", kMaxGraphs, " feed shapes already");
    return RunItems(feeds, fetches, options_.inter_op_pool, nullptr);
  }
  std::optional<std::string> capture_failure;  // why the capture failed
  {
    absl::MutexLock lock(&entry->mu);
    const bool warmed = entry->warmed;
    if (entry->graph != nullptr) {
      GS_ASSIGN_OR_RETURN(const bool replayed, Replay(*entry, feeds, fetches));
      if (replayed) {
        md.graph = RunMetadata::Graph::kReplayed;
        absl::MutexLock stats(&graphs_mu_);
        ++graph_stats_.replays;
        return absl::OkStatus();
      }
      entry->graph.reset();
      entry->inputs.clear();
      entry->outputs.clear();
      entry->reads.clear();
      md.graph_note = "a variable moved since the capture; the next run captures again";
      absl::MutexLock stats(&graphs_mu_);
      --graph_stats_.graphs;
    } else if (!warmed) {
      md.graph_note = "the first run at these shapes goes the usual way";
    } else if (entry->failures >= kMaxCaptureFailures) {
      md.graph_note =
          absl::StrCat("capture failed ", entry->failures, " times: ", entry->last_failure);
    } else {
      const absl::Status captured = Capture(*entry, feeds);
      absl::StatusOr<bool> replayed = false;
      if (captured.ok()) replayed = Replay(*entry, feeds, fetches);
      if (!captured.ok()) {
        capture_failure = std::string(captured.message());
        md.graph_note = absl::StrCat("capture failed: ", *capture_failure);
      } else {
        absl::MutexLock stats(&graphs_mu_);
        ++graph_stats_.captures;
        ++graph_stats_.graphs;
        GS_RETURN_IF_ERROR(replayed.status());
        if (*replayed) {
          ++graph_stats_.replays;
          md.graph = RunMetadata::Graph::kCaptured;
          return absl::OkStatus();
        }
        md.graph_note = "a variable moved during the capture";  // kept: the next run checks again
      }
    }
  }
  GS_RETURN_IF_ERROR(RunItems(feeds, fetches, options_.inter_op_pool, nullptr));
  // A failed capture counts only when the usual run succeeds: one that fails
  // the same way (a kernel error, not the capture's) says nothing about graphs.
  absl::MutexLock lock(&entry->mu);
  entry->warmed = true;
  if (capture_failure.has_value()) {
    ++entry->failures;
    entry->last_failure = *capture_failure;
    absl::MutexLock stats(&graphs_mu_);
    ++graph_stats_.capture_failures;
    graph_stats_.last_failure = *capture_failure;
  }
  return absl::OkStatus();
}

absl::Status Executor::Capture(GraphEntry& entry, const std::vector<Tensor>& feeds) const {
  std::vector<Tensor> inputs;
  try {
    for (const Tensor& f : feeds) {
      GS_CHECK_ARG(f.host_accessible() && DTypeSize(f.dtype()) > 0, "feed ", inputs.size(), " (",
                   DTypeName(f.dtype()), " on ", f.device(),
                   ") cannot be copied into a graph's host buffer");
      Tensor t(graph_device_->host_staging_allocator(), f.dtype(), f.shape());
      if (f.bytes() > 0) std::memcpy(t.raw_data(), f.raw_data(), f.bytes());
      inputs.push_back(std::move(t));
    }
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("no host memory for the graph's feed buffers");
  }
  GS_RETURN_IF_ERROR(graph_device_->BeginGraphCapture());
  std::vector<Tensor> outputs;
  std::vector<VarRead> reads;
  // On this thread only: the device records what this thread queues.
  const absl::Status run = RunItems(inputs, &outputs, nullptr, &reads);
  absl::StatusOr<std::unique_ptr<DeviceGraph>> graph = graph_device_->EndGraphCapture();
  GS_RETURN_IF_ERROR(run);
  GS_RETURN_IF_ERROR(graph.status());
  for (const Tensor& out : outputs) {
    if (!out.host_accessible() || DTypeSize(out.dtype()) == 0) {
      return absl::InternalError(
          absl::StrCat("a captured fetch is ", DTypeName(out.dtype()), " on ", out.device()));
    }
  }
  entry.inputs = std::move(inputs);
  entry.outputs = std::move(outputs);
  entry.reads = std::move(reads);
  entry.graph = *std::move(graph);
  return absl::OkStatus();
}

absl::StatusOr<bool> Executor::Replay(GraphEntry& entry, const std::vector<Tensor>& feeds,
                                      std::vector<Tensor>* fetches) const {
  // The variables again, held until the graph has run: an update meanwhile
  // copies (copy-on-write) instead of writing the buffers the graph reads.
  std::vector<Tensor> held;
  held.reserve(entry.reads.size());
  for (const VarRead& read : entry.reads) {
    const Item& item = items_[read.item];
    OpKernelContext ctx(item.device, options_.resources, 1);
    ctx.set_inputs({&read.handle});
    ctx.set_forwardable({nullptr});
    absl::Status status = item.device->Activate();
    if (status.ok()) status = item.kernel->Compute(ctx);
    if (!status.ok()) {
      return absl::Status(status.code(), absl::StrCat("node '", item.node->name(), "' (",
                                                      item.node->op(), "): ", status.message()));
    }
    Tensor& value = ctx.outputs()[0];
    if (value.raw_data() != read.data || value.dtype() != read.dtype ||
        value.shape() != read.shape) {
      return false;
    }
    held.push_back(std::move(value));
  }
  for (size_t i = 0; i < feeds.size(); ++i) {
    if (feeds[i].bytes() > 0) {
      std::memcpy(entry.inputs[i].raw_data(), feeds[i].raw_data(), feeds[i].bytes());
    }
  }
  GS_RETURN_IF_ERROR(entry.graph->Replay());
  fetches->clear();
  fetches->reserve(entry.outputs.size());
  for (const Tensor& out : entry.outputs) {
    Tensor copy(out.dtype(), out.shape());
    if (out.bytes() > 0) std::memcpy(copy.raw_data(), out.raw_data(), out.bytes());
    fetches->push_back(std::move(copy));
  }
  return true;
}

DeviceGraphStats Executor::device_graph_stats() const {
  absl::MutexLock lock(&graphs_mu_);
  return graph_stats_;
}

}  // namespace gradserve
