#include "serving/servable.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "graph/file_io.h"
#include "graph/saved_model.h"
#include "graph/status.h"
#include "runtime/master.h"
#include "serving/model_config.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

template <typename Tensors>
std::string Names(const Tensors& tensors) {
  std::vector<std::string> names;
  for (const auto& t : tensors) names.push_back(t.name());
  return absl::StrJoin(names, ", ");
}

std::string ShapeString(const Shape& s) { return s.DebugString(); }

// Random values for warm-up inputs (any values will do; they only exercise the
// kernels and build the executors).
Tensor RandomTensor(DType dtype, const Shape& shape, std::mt19937& rng) {
  Tensor t(dtype, shape);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const int64_t n = t.num_elements();
  switch (dtype) {
    case DType::kFloat:
      for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = u(rng);
      break;
    case DType::kDouble:
      for (int64_t i = 0; i < n; ++i) t.data<double>()[i] = u(rng);
      break;
    default:
      std::memset(t.raw_data(), 0, t.bytes());
  }
  return t;
}

// "model 'm' version 1 (fetching x:0, y:0): 12 nodes on cuda:0, 3 on cpu:0
// without a CUDA kernel (Pack (int32) x2, Shape x1), 4 copies".
std::string PlacementLine(const std::string& model, int64_t version, const struct RunSignature& sig,
                          const gradserve::ExecutionPlan& plan) {
  std::map<std::string, int> per_device;
  for (const Device* d : plan.devices) ++per_device[d->name()];
  std::vector<std::string> parts;
  for (const auto& [name, n] : per_device) parts.push_back(absl::StrCat(n, " nodes on ", name));
  std::string line = absl::StrCat(
      "model '", model, "' version ", version, " (fetching ",
      sig.fetches.empty() ? "nothing" : absl::StrJoin(sig.fetches, ", "),
      sig.targets.empty() ? "" : absl::StrCat("; running ", absl::StrJoin(sig.targets, ", ")),
      "): ", absl::StrJoin(parts, ", "));
  if (!plan.fallbacks.empty()) {
    absl::StrAppend(
        &line, "; on the CPU for want of a CUDA kernel: ", absl::StrJoin(plan.fallbacks, ", "));
  }
  absl::StrAppend(&line, "; ", plan.copies.size(), " copies between host and device");
  return line;
}

// "model 'm' version 1: CUDA graphs recorded for batch sizes 1, 8; not
// recorded, so run without a graph: batch size 32 (why)".
std::string GraphsLine(const std::string& model, int64_t version,
                       const std::vector<int64_t>& recorded,
                       const std::vector<std::string>& failed) {
  std::string line = absl::StrCat("model '", model, "' version ", version, ": ");
  if (recorded.empty()) {
    absl::StrAppend(&line, "no CUDA graphs recorded");
  } else {
    absl::StrAppend(&line, "CUDA graphs recorded for batch sizes ", absl::StrJoin(recorded, ", "));
  }
  if (!failed.empty()) {
    absl::StrAppend(&line, "; not recorded, so run without a graph: ", absl::StrJoin(failed, "; "));
  }
  return line;
}

}  // namespace

absl::StatusOr<std::shared_ptr<Servable>> Servable::Load(
    const std::string& model_dir, int64_t version, inference::ModelConfig config,
    const SessionOptions& session_options, InferObserver observer, TrainingOptions training) {
  const std::string dir = absl::StrCat(model_dir, "/", version);
  std::shared_ptr<Servable> s(new Servable());
  s->version_ = version;
  s->model_dir_ = model_dir;
  s->observer_ = std::move(observer);
  s->log_ = training.observer.log;
  const std::string model = config.name();
  SessionOptions session = session_options;
  GS_ASSIGN_OR_RETURN(session.gpu, ModelDevice(config, session_options.gpu));
  if (session.gpu.has_value() && training.observer.log) {
    session.on_placement = [model, version, log = training.observer.log](
                               const struct RunSignature& sig,
                               const gradserve::ExecutionPlan& plan) {
      log(PlacementLine(model, version, sig, plan));
    };
  }
  std::unique_ptr<Trainer> trainer;
  if (config.training().enabled()) {
    GS_RETURN_IF_ERROR(
        Annotate(CompleteTrainingConfig(config.max_batch_size(), config.mutable_training()),
                 absl::StrCat(model_dir, "/config.pbtxt")));
    absl::StatusOr<std::unique_ptr<Trainer>> loaded =
        Trainer::Load(dir, OptimizerConfigFor(config.training()), session);
    if (loaded.ok()) {
      trainer = std::move(*loaded);
      s->active_ = &trainer->bundle();
    } else if (loaded.status().code() == absl::StatusCode::kFailedPrecondition) {
      s->no_training_ = absl::StrCat("model '", model, "' version ", version,
                                     " cannot train: ", loaded.status().message());
    } else {
      return loaded.status();
    }
  } else {
    s->no_training_ = absl::StrCat("training is not enabled for model '", model,
                                   "'; enable it in its config.pbtxt: training { enabled: true }");
  }
  if (trainer == nullptr) {
    GS_ASSIGN_OR_RETURN(s->bundle_, LoadSavedModel(dir, session));
  }
  s->signature_ = s->active_->FindSignature(kServingSignatureKey);
  if (s->signature_ == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(dir, ": the saved model has no '", kServingSignatureKey, "' signature"));
  }
  GS_RETURN_IF_ERROR(Annotate(CompleteModelConfig(*s->signature_, &config), dir));
  s->config_ = std::move(config);
  if (trainer != nullptr) {
    OnlineTrainerOptions o;
    o.model = model;
    o.version = version;
    o.config = s->config_.training();
    o.checkpoint_dir = training.checkpoint_root.empty()
                           ? absl::StrCat(dir, "/checkpoints")
                           : absl::StrCat(training.checkpoint_root, "/", model, "/", version);
    o.observer = std::move(training.observer);
    o.lock_whole_step = training.lock_whole_step;
    GS_ASSIGN_OR_RETURN(s->online_,
                        OnlineTrainer::Create(std::move(trainer), &s->weights_, std::move(o)));
  }
  // Note [Graph batch sizes].
  std::vector<int64_t> graph_sizes = DeviceGraphBatchSizes(s->config_);
  if (session.gpu.has_value()) {
    s->graph_batch_sizes_ = std::move(graph_sizes);
  } else if (!graph_sizes.empty() && s->log_) {
    s->log_(absl::StrCat("model '", model, "' version ", version,
                         ": optimization.cuda.graphs has no effect on the CPU; batches run "
                         "without CUDA graphs"));
  }
  Servable* raw = s.get();
  BatcherOptions batching = BatcherOptionsFor(s->config_);
  // On a GPU, batches are assembled in pinned memory, so their copy to the
  // device is an asynchronous DMA (a pageable source waits for the stream).
  if (session.gpu.has_value()) batching.batch_allocator = GpuStagingAllocator();
  GS_ASSIGN_OR_RETURN(
      s->batcher_, DynamicBatcher::Create(
                       batching, [raw](const TensorMap& in, const std::vector<std::string>& out) {
                         return raw->RunBatch(in, out);
                       }));
  return s;
}

Servable::~Servable() { Drain(); }

void Servable::Drain() {
  if (batcher_) batcher_->Drain();
  if (online_) online_->Drain();
}

absl::Status Servable::TrainingAvailable() const {
  if (online_) return absl::OkStatus();
  return absl::FailedPreconditionError(no_training_);
}

void Servable::Train(TrainRequest request, TrainCallback done) {
  if (!online_) return done(TrainingAvailable());
  online_->Train(std::move(request), std::move(done));
}

int64_t Servable::GraphBatchSize(int64_t rows) const {
  auto it = std::lower_bound(graph_batch_sizes_.begin(), graph_batch_sizes_.end(), rows);
  return it == graph_batch_sizes_.end() ? 0 : *it;
}

absl::StatusOr<BatchOutput> Servable::RunBatch(const TensorMap& inputs,
                                               const std::vector<std::string>& outputs,
                                               bool warm_up, RunMetadata* metadata) {
  int64_t rows = 1;
  if (config_.max_batch_size() > 0 && !inputs.empty() && inputs.begin()->second.rank() > 0) {
    rows = inputs.begin()->second.dim(0);
  }
  // Note [Graph batch sizes]: padded to the graph's size, cut back below.
  const int64_t graph_rows = GraphBatchSize(rows);
  const bool pad = graph_rows > rows;
  const TensorMap padded =
      pad ? PadBatch(inputs, graph_rows, batcher_->options().batch_allocator) : TensorMap();
  const RunOptions options{.use_device_graph = graph_rows > 0};
  BatchOutput out;
  absl::StatusOr<std::map<std::string, Tensor>> values;
  {
    // Note [Weights generations]: one generation for the whole run.
    absl::ReaderMutexLock lock(&weights_.mu);
    out.generation = weights_.generation.load();
    values = RunSignatureDef(*active_->session, *signature_, kServingSignatureKey,
                             pad ? padded : inputs, outputs, /*targets=*/{}, options, metadata);
  }
  GS_RETURN_IF_ERROR(values.status());
  for (auto& [key, value] : *values) {
    if (pad && value.rank() > 0 && value.dim(0) == graph_rows) value = value.Slice(0, rows);
    out.outputs.emplace(key, std::move(value));
  }
  if (!warm_up) {
    ++stats_.execution_count;
    stats_.inference_count += rows;
    if (observer_.on_batch) observer_.on_batch(name(), version_, rows);
  }
  return out;
}

absl::Status Servable::Validate(const InferRequest& r, BatchTask* task) const {
  const bool batching = config_.max_batch_size() > 0;
  for (const auto& [name, t] : r.inputs) {
    const inference::ModelInput* in = nullptr;
    for (const auto& i : config_.input()) {
      if (i.name() == name) in = &i;
    }
    GS_CHECK_ARG(in != nullptr, "unknown input '", name, "' for model '", this->name(),
                 "'; its inputs are: ", Names(config_.input()));
    GS_CHECK_ARG(!task->inputs.contains(name), "input '", name, "' is given twice");
    const DType want = *DTypeFromConfig(in->data_type());
    GS_CHECK_ARG(t.dtype() == want, "input '", name, "' is ", DatatypeName(t.dtype()),
                 " but model '", this->name(), "' expects ", DatatypeName(want));
    std::vector<int64_t> dims(in->dims().begin(), in->dims().end());
    if (batching) dims.insert(dims.begin(), -1);
    bool ok = t.rank() == static_cast<int>(dims.size());
    for (int d = 0; ok && d < t.rank(); ++d) ok = dims[d] == -1 || dims[d] == t.dim(d);
    GS_CHECK_ARG(ok, "input '", name, "' has shape ", ShapeString(t.shape()), " but model '",
                 this->name(), "' expects ", ShapeString(Shape(dims)),
                 batching ? " (the first dimension is the batch)" : "");
    if (batching) {
      GS_CHECK_ARG(t.dim(0) >= 1 && t.dim(0) <= config_.max_batch_size(), "input '", name,
                   "' has a batch of ", t.dim(0), "; model '", this->name(),
                   "' takes 1 to max_batch_size = ", config_.max_batch_size(), " rows");
    }
    task->inputs.emplace(name, t);
  }
  for (const auto& in : config_.input()) {
    GS_CHECK_ARG(in.optional() || task->inputs.contains(in.name()), "missing input '", in.name(),
                 "' for model '", this->name(), "'");
  }
  if (r.requested_outputs.empty()) {
    for (const auto& out : config_.output()) task->outputs.push_back(out.name());
  } else {
    std::set<std::string> seen;
    for (const std::string& name : r.requested_outputs) {
      bool known = false;
      for (const auto& out : config_.output()) known |= out.name() == name;
      GS_CHECK_ARG(known, "unknown output '", name, "' for model '", this->name(),
                   "'; its outputs are: ", Names(config_.output()));
      GS_CHECK_ARG(seen.insert(name).second, "output '", name, "' is requested twice");
      task->outputs.push_back(name);
    }
  }
  return absl::OkStatus();
}

void Servable::Infer(InferRequest request, InferCallback done) {
  const absl::Time start = absl::Now();
  BatchTask task;
  absl::Status valid = Validate(request, &task);
  if (!valid.ok()) {
    Finish(done, start, valid, absl::ZeroDuration(), absl::ZeroDuration());
    return;
  }
  const absl::Duration timeout = DefaultRequestTimeout(config_);
  task.deadline = std::min(request.deadline, start + timeout);
  auto shared_done = std::make_shared<InferCallback>(std::move(done));
  const std::vector<std::string> order = task.outputs;
  task.done = [this, shared_done, start, order, id = request.id](absl::StatusOr<TaskResult> r) {
    if (!r.ok()) {
      Finish(*shared_done, start, r.status(), absl::ZeroDuration(), absl::ZeroDuration());
      return;
    }
    InferResult result;
    result.model_name = name();
    result.model_version = version_;
    result.id = id;
    result.weights_generation = r->generation;
    result.batch_size = r->batch_size;
    for (const std::string& out : order) {
      auto it = r->outputs.find(out);
      if (it != r->outputs.end()) result.outputs.emplace_back(out, std::move(it->second));
    }
    Finish(*shared_done, start, std::move(result), r->queue_time, r->compute_time);
  };
  absl::Status queued = batcher_->Enqueue(std::move(task));
  if (!queued.ok()) {
    Finish(*shared_done, start, queued, absl::ZeroDuration(), absl::ZeroDuration());
  }
}

void Servable::Finish(const InferCallback& done, absl::Time start,
                      absl::StatusOr<InferResult> result, absl::Duration queue,
                      absl::Duration compute) {
  const absl::Duration total = absl::Now() - start;
  if (result.ok()) {
    ++stats_.success_count;
    stats_.success_ns += absl::ToInt64Nanoseconds(total);
    ++stats_.queue_count;
    stats_.queue_ns += absl::ToInt64Nanoseconds(queue);
    ++stats_.compute_count;
    stats_.compute_ns += absl::ToInt64Nanoseconds(compute);
    stats_.last_inference_ms = absl::ToUnixMillis(absl::Now());
  } else {
    ++stats_.fail_count;
    stats_.fail_ns += absl::ToInt64Nanoseconds(total);
  }
  if (observer_.on_request) {
    observer_.on_request(name(), version_, RequestOutcome(result.status()), total, queue, compute);
  }
  done(std::move(result));
}

absl::StatusOr<TensorMap> Servable::WarmupInputs(const inference::ModelWarmup& w,
                                                 std::mt19937& rng) const {
  const bool batching = config_.max_batch_size() > 0;
  const int64_t rows = std::max<int64_t>(w.batch_size(), 1);
  GS_CHECK_ARG(!batching || rows <= config_.max_batch_size(), "batch_size ", rows,
               " exceeds max_batch_size ", config_.max_batch_size());
  TensorMap inputs;
  for (const auto& in : config_.input()) {
    auto it = w.inputs().find(in.name());
    GS_CHECK_ARG(it != w.inputs().end() || in.optional(), "no data for input '", in.name(), "'");
    if (it == w.inputs().end()) continue;
    const inference::ModelWarmup::Input& data = it->second;
    GS_ASSIGN_OR_RETURN(DType dtype, DTypeFromConfig(data.data_type()));
    std::vector<int64_t> dims;
    if (batching) dims.push_back(rows);
    for (int64_t d : data.dims()) dims.push_back(d);
    GS_ASSIGN_OR_RETURN(Shape shape, WireShape(dims, in.name()));
    Tensor t(dtype, shape);
    if (data.has_input_data_file()) {
      const std::string path = absl::StrCat(model_dir_, "/warmup/", data.input_data_file());
      GS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
      GS_ASSIGN_OR_RETURN(t, TensorFromRaw(bytes, dtype, shape, in.name()));
    } else if (data.random_data()) {
      t = RandomTensor(dtype, shape, rng);
    } else {
      std::memset(t.raw_data(), 0, t.bytes());
    }
    inputs.emplace(in.name(), std::move(t));
  }
  return inputs;
}

absl::StatusOr<TensorMap> Servable::RandomInputs(int64_t rows, std::mt19937& rng) const {
  inference::ModelWarmup w;
  w.set_batch_size(static_cast<uint32_t>(rows));
  for (const auto& in : config_.input()) {
    inference::ModelWarmup::Input& data = (*w.mutable_inputs())[in.name()];
    data.set_data_type(in.data_type());
    for (int64_t d : in.dims()) data.add_dims(d < 0 ? 1 : d);
    data.set_random_data(true);
  }
  return WarmupInputs(w, rng);
}

absl::Status Servable::WarmUp() {
  std::mt19937 rng(1);
  std::vector<std::string> outputs;
  for (const auto& out : config_.output()) outputs.push_back(out.name());
  if (config_.model_warmup_size() > 0) {
    // The config's warm-up requests, each run `count` times.
    for (const inference::ModelWarmup& w : config_.model_warmup()) {
      const std::string what = absl::StrCat("model_warmup '", w.name(), "'");
      absl::StatusOr<TensorMap> inputs = WarmupInputs(w, rng);
      if (!inputs.ok()) return Annotate(inputs.status(), what);
      for (uint32_t i = 0; i < std::max<uint32_t>(w.count(), 1); ++i) {
        absl::StatusOr<BatchOutput> out = RunBatch(*inputs, outputs, /*warm_up=*/true);
        if (!out.ok()) return Annotate(out.status(), what);
      }
    }
  } else {
    // Without any: one batch of random inputs of each preferred size (or 1),
    // so the first real request does not pay for building the executor.
    std::vector<int64_t> sizes = {1};
    if (config_.has_dynamic_batching() && config_.dynamic_batching().preferred_batch_size_size()) {
      sizes.assign(config_.dynamic_batching().preferred_batch_size().begin(),
                   config_.dynamic_batching().preferred_batch_size().end());
    }
    for (int64_t rows : sizes) {
      absl::StatusOr<TensorMap> inputs = RandomInputs(rows, rng);
      absl::StatusOr<BatchOutput> out =
          inputs.ok() ? RunBatch(*inputs, outputs, /*warm_up=*/true) : inputs.status();
      if (!out.ok()) {
        return Annotate(out.status(), absl::StrCat("warm-up with a batch of ", rows));
      }
    }
  }
  return RecordDeviceGraphs(outputs, rng);
}

absl::Status Servable::RecordDeviceGraphs(const std::vector<std::string>& outputs,
                                          std::mt19937& rng) {
  if (graph_batch_sizes_.empty()) return absl::OkStatus();
  std::vector<int64_t> recorded;
  std::vector<std::string> failed;  // "batch size 32 (why)"
  for (int64_t rows : graph_batch_sizes_) {
    absl::StatusOr<TensorMap> inputs = RandomInputs(rows, rng);
    absl::Status status = inputs.status();
    // Note [Device graphs]: the first run at a shape goes the usual way, the
    // second records (or, after a warm-up at this size above, replays).
    RunMetadata metadata;
    for (int run = 0; run < 2 && status.ok(); ++run) {
      status = RunBatch(*inputs, outputs, /*warm_up=*/true, &metadata).status();
    }
    if (!status.ok()) {
      return Annotate(status, absl::StrCat("CUDA graph warm-up with a batch of ", rows));
    }
    if (metadata.graph == RunMetadata::Graph::kCaptured ||
        metadata.graph == RunMetadata::Graph::kReplayed) {
      recorded.push_back(rows);
    } else {
      failed.push_back(absl::StrCat("batch size ", rows, " (", metadata.graph_note, ")"));
    }
  }
  if (log_) log_(GraphsLine(name(), version_, recorded, failed));
  return absl::OkStatus();
}

}  // namespace gradserve::serving
