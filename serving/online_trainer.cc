#include "serving/online_trainer.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <set>
#include <system_error>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/file_io.h"
#include "graph/status.h"
#include "serving/model_config.h"
#include "serving/tensor_codec.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

constexpr char kLossKey[] = "loss";
constexpr char kStepKey[] = "step";

template <typename T>
Tensor Scalar(DType dtype, T value) {
  Tensor t(dtype, Shape{});
  t.data<T>()[0] = value;
  return t;
}

// The first row of `t` (dim 0) holding a NaN or Inf, or -1.
template <typename T>
int64_t FirstNonFiniteRow(const Tensor& t, std::vector<bool>* bad_rows) {
  const int64_t rows = t.dim(0);
  const int64_t per_row = rows > 0 ? t.num_elements() / rows : 0;
  const T* v = t.data<T>();
  int64_t first = -1;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < per_row; ++i) {
      if (!std::isfinite(static_cast<double>(v[r * per_row + i]))) {
        (*bad_rows)[r] = true;
        if (first < 0) first = r;
        break;
      }
    }
  }
  return first;
}

// The rows of `t` whose `keep` entry is true.
Tensor KeepRows(const Tensor& t, const std::vector<bool>& keep, int64_t kept) {
  std::vector<int64_t> dims(t.shape().dims().begin(), t.shape().dims().end());
  const size_t row_bytes = dims[0] > 0 ? t.bytes() / dims[0] : 0;
  dims[0] = kept;
  Tensor out(t.dtype(), Shape(dims));
  char* dst = static_cast<char*>(out.raw_data());
  const char* src = static_cast<const char*>(t.raw_data());
  for (size_t r = 0; r < keep.size(); ++r) {
    if (!keep[r]) continue;
    std::memcpy(dst, src + r * row_bytes, row_bytes);
    dst += row_bytes;
  }
  return out;
}

}  // namespace

OptimizerConfig OptimizerConfigFor(const inference::ModelTrainingConfig& config) {
  OptimizerConfig c;  // Keras's Adam
  const inference::ModelOptimizer& o = config.optimizer();
  switch (o.kind_case()) {
    case inference::ModelOptimizer::kSgd:
      c.kind = OptimizerKind::kSgd;
      c.learning_rate = o.sgd().has_learning_rate() ? o.sgd().learning_rate() : 0.01;
      break;
    case inference::ModelOptimizer::kMomentum:
      c.kind = OptimizerKind::kMomentum;
      c.learning_rate = o.momentum().has_learning_rate() ? o.momentum().learning_rate() : 0.01;
      if (o.momentum().has_momentum()) c.momentum = o.momentum().momentum();
      c.use_nesterov = o.momentum().use_nesterov();
      break;
    case inference::ModelOptimizer::kAdamw:
      c.kind = OptimizerKind::kAdamW;
      if (o.adamw().has_learning_rate()) c.learning_rate = o.adamw().learning_rate();
      if (o.adamw().has_beta1()) c.beta1 = o.adamw().beta1();
      if (o.adamw().has_beta2()) c.beta2 = o.adamw().beta2();
      if (o.adamw().has_epsilon()) c.epsilon = o.adamw().epsilon();
      if (o.adamw().has_weight_decay()) c.weight_decay = o.adamw().weight_decay();
      break;
    case inference::ModelOptimizer::kAdam:
      if (o.adam().has_learning_rate()) c.learning_rate = o.adam().learning_rate();
      if (o.adam().has_beta1()) c.beta1 = o.adam().beta1();
      if (o.adam().has_beta2()) c.beta2 = o.adam().beta2();
      if (o.adam().has_epsilon()) c.epsilon = o.adam().epsilon();
      c.use_nesterov = o.adam().use_nesterov();
      break;
    case inference::ModelOptimizer::KIND_NOT_SET:
      break;
  }
  c.clip_global_norm = config.clip_global_norm();
  return c;
}

absl::Status CompleteTrainingConfig(int64_t max_batch_size,
                                    inference::ModelTrainingConfig* config) {
  if (!config->has_batch_size()) config->set_batch_size(max_batch_size > 0 ? max_batch_size : 32);
  if (!config->has_max_queue_size()) config->set_max_queue_size(256);
  if (!config->has_max_queue_delay_microseconds()) config->set_max_queue_delay_microseconds(1000);
  if (!config->has_keep_checkpoints()) config->set_keep_checkpoints(5);
  GS_CHECK_ARG(config->batch_size() >= 1, "training.batch_size must be >= 1, got ",
               config->batch_size());
  GS_CHECK_ARG(config->max_queue_size() >= 0, "training.max_queue_size must be >= 0, got ",
               config->max_queue_size());
  GS_CHECK_ARG(config->max_queue_delay_microseconds() >= 0,
               "training.max_queue_delay_microseconds must be >= 0, got ",
               config->max_queue_delay_microseconds());
  GS_CHECK_ARG(config->checkpoint_every_steps() >= 0 && config->checkpoint_every_seconds() >= 0,
               "training.checkpoint_every_steps and checkpoint_every_seconds must be >= 0");
  GS_CHECK_ARG(config->keep_checkpoints() >= 1, "training.keep_checkpoints must be >= 1, got ",
               config->keep_checkpoints());
  GS_CHECK_ARG(std::isfinite(config->clip_global_norm()) && config->clip_global_norm() >= 0,
               "training.clip_global_norm must be >= 0");
  return OptimizerConfigFor(*config).Validate();
}

OnlineTrainer::OnlineTrainer(std::unique_ptr<Trainer> trainer, ServingWeights* weights,
                             OnlineTrainerOptions options)
    : trainer_(std::move(trainer)),
      weights_(weights),
      options_(std::move(options)),
      store_(options_.checkpoint_dir, options_.config.keep_checkpoints()),
      last_loss_(std::nan("")) {}

absl::StatusOr<std::unique_ptr<OnlineTrainer>> OnlineTrainer::Create(
    std::unique_ptr<Trainer> trainer, ServingWeights* weights, OnlineTrainerOptions options) {
  std::unique_ptr<OnlineTrainer> t(
      new OnlineTrainer(std::move(trainer), weights, std::move(options)));
  GS_RETURN_IF_ERROR(t->store_.Init());
  t->Resume();
  const inference::ModelTrainingConfig& c = t->options_.config;
  BatcherOptions b;
  b.max_batch_size = c.batch_size();
  b.max_queue_delay = absl::Microseconds(c.max_queue_delay_microseconds());
  b.max_queue_size = c.max_queue_size();
  b.split_outputs = false;  // a step's loss and step number are the whole batch's
  OnlineTrainer* raw = t.get();
  GS_ASSIGN_OR_RETURN(t->batcher_,
                      DynamicBatcher::Create(b, [raw](const TensorMap& in,
                                                      const std::vector<std::string>&) {
                        return raw->RunStep(in);
                      }));
  {
    absl::MutexLock lock(&t->train_mu_);
    t->last_checkpoint_time_ = absl::Now();
  }
  if (c.checkpoint_every_seconds() > 0) t->timer_ = std::thread([raw] { raw->TimerLoop(); });
  if (t->options_.observer.on_start) {
    t->options_.observer.on_start(t->options_.model, t->options_.version);
  }
  return t;
}

OnlineTrainer::~OnlineTrainer() { Drain(); }

void OnlineTrainer::Log(const std::string& line) const {
  if (options_.observer.log) options_.observer.log(line);
}

void OnlineTrainer::Resume() {
  absl::MutexLock lock(&train_mu_);
  auto accept = [this](const gradserve::Checkpoint& ckpt) -> absl::Status {
    absl::WriterMutexLock w(&weights_->mu);
    absl::Status s = trainer_->RestoreState(ckpt.tensors);
    if (!s.ok()) return absl::FailedPreconditionError(s.message());
    return absl::OkStatus();
  };
  auto skipped = [this](const CheckpointEntry& e, const absl::Status& why) {
    Log(absl::StrCat("model '", options_.model, "' version ", options_.version,
                     ": skipping checkpoint ", e.path, ": ", why.message()));
  };
  auto found = store_.ReadNewestValid(accept, skipped);
  if (!found.ok()) return;  // nothing to resume: the saved model's weights
  weights_->generation = found->first.generation;
  last_checkpoint_ = found->first;
  Log(absl::StrCat("model '", options_.model, "' version ", options_.version,
                   " resumed training from ", found->first.path, " (step ", found->first.step,
                   ", weights generation ", found->first.generation, ")"));
}

absl::Status OnlineTrainer::Validate(TrainRequest& r, BatchTask* task) const {
  const SignatureDef& sig = trainer_->signature();
  std::vector<std::string> keys;
  for (const auto& [key, info] : sig.inputs()) keys.push_back(key);
  int64_t rows = -1;
  for (auto& [name, t] : r.inputs) {
    auto it = sig.inputs().find(name);
    GS_CHECK_ARG(it != sig.inputs().end(), "unknown input '", name, "' for training model '",
                 options_.model, "'; its train signature takes: ", absl::StrJoin(keys, ", "));
    GS_CHECK_ARG(!task->inputs.contains(name), "input '", name, "' is given twice");
    const DType want = static_cast<DType>(it->second.dtype());
    GS_CHECK_ARG(t.dtype() == want, "input '", name, "' is ", DatatypeName(t.dtype()),
                 " but the train signature of model '", options_.model, "' expects ",
                 DatatypeName(want));
    const Shape expected = Shape::FromProto(it->second.tensor_shape());
    GS_CHECK_ARG(t.rank() >= 1 && expected.IsCompatibleWith(t.shape()), "input '", name,
                 "' has shape ", t.shape().DebugString(), " but the train signature expects ",
                 expected.DebugString(), " (the first dimension is the examples)");
    GS_CHECK_ARG(rows < 0 || t.dim(0) == rows, "inputs disagree on the number of examples: '",
                 name, "' has ", t.dim(0), ", others ", rows);
    rows = t.dim(0);
    task->inputs.emplace(name, t);
  }
  for (const std::string& key : keys) {
    GS_CHECK_ARG(task->inputs.contains(key), "missing input '", key, "' for training model '",
                 options_.model, "' (its train signature takes: ", absl::StrJoin(keys, ", "),
                 ")");
  }
  GS_CHECK_ARG(rows >= 1 && rows <= options_.config.batch_size(), "the request has ", rows,
               " examples; model '", options_.model, "' trains on 1 to batch_size = ",
               options_.config.batch_size(), " per request");
  // Labels: class indices in [0, classes).
  for (const auto& [key, classes] : trainer_->label_classes()) {
    const Tensor& t = task->inputs.at(key);
    for (int64_t i = 0; i < t.num_elements(); ++i) {
      const int64_t v = t.dtype() == DType::kInt64   ? t.data<int64_t>()[i]
                        : t.dtype() == DType::kInt32 ? t.data<int32_t>()[i]
                                                     : 0;
      GS_CHECK_ARG(v >= 0 && v < classes, "label ", v, " (example ", i, " of input '", key,
                   "') is not a class index of model '", options_.model, "': expected 0 to ",
                   classes - 1);
    }
  }
  // Non-finite features or labels.
  std::vector<bool> bad(rows, false);
  for (const auto& [name, t] : task->inputs) {
    int64_t first = -1;
    if (t.dtype() == DType::kFloat) first = FirstNonFiniteRow<float>(t, &bad);
    if (t.dtype() == DType::kDouble) first = FirstNonFiniteRow<double>(t, &bad);
    GS_CHECK_ARG(first < 0 || options_.config.nonfinite() ==
                                  inference::ModelTrainingConfig::SKIP,
                 "example ", first, " of input '", name,
                 "' holds NaN or Inf; training data must be finite (model '", options_.model,
                 "' rejects such requests: training.nonfinite is REJECT)");
  }
  const int64_t skipped = std::count(bad.begin(), bad.end(), true);
  if (skipped > 0) {
    if (options_.observer.on_skipped_examples) {
      options_.observer.on_skipped_examples(options_.model, options_.version, skipped);
    }
    GS_CHECK_ARG(skipped < rows, "all ", rows,
                 " examples hold NaN or Inf and were skipped (training.nonfinite is SKIP)");
    std::vector<bool> keep(rows);
    for (int64_t i = 0; i < rows; ++i) keep[i] = !bad[i];
    for (auto& [name, t] : task->inputs) t = KeepRows(t, keep, rows - skipped);
  }
  task->outputs = {kLossKey, kStepKey};
  return absl::OkStatus();
}

void OnlineTrainer::Train(TrainRequest request, TrainCallback done) {
  auto finish = [this](const TrainCallback& cb, absl::StatusOr<TrainResult> r) {
    if (options_.observer.on_request) {
      options_.observer.on_request(options_.model, options_.version, RequestOutcome(r.status()));
    }
    cb(std::move(r));
  };
  BatchTask task;
  absl::Status valid = Validate(request, &task);
  if (!valid.ok()) return finish(done, valid);
  task.deadline = request.deadline;
  auto shared_done = std::make_shared<TrainCallback>(std::move(done));
  task.done = [finish, shared_done, id = request.id](absl::StatusOr<TaskResult> r) {
    if (!r.ok()) return finish(*shared_done, r.status());
    TrainResult result;
    result.id = id;
    result.loss = r->outputs.at(kLossKey).data<double>()[0];
    result.step = r->outputs.at(kStepKey).data<int64_t>()[0];
    result.generation = r->generation;
    result.examples_in_step = r->batch_size;
    finish(*shared_done, std::move(result));
  };
  absl::Status queued = batcher_->Enqueue(std::move(task));
  if (!queued.ok()) finish(*shared_done, queued);
}

absl::StatusOr<BatchOutput> OnlineTrainer::RunStep(const TensorMap& inputs) {
  absl::MutexLock lock(&train_mu_);
  const absl::Time start = absl::Now();
  const int64_t examples = inputs.empty() ? 0 : inputs.begin()->second.dim(0);
  // Note [Weights generations]: forward and backward beside inference...
  std::optional<absl::WriterMutexLock> whole_step;
  if (options_.lock_whole_step) whole_step.emplace(&weights_->mu);
  GS_ASSIGN_OR_RETURN(PendingStep pending, trainer_->ComputeStep(inputs));
  if (!pending.finite()) {
    ++nonfinite_steps_;
    if (options_.observer.on_nonfinite_step) {
      options_.observer.on_nonfinite_step(options_.model, options_.version);
    }
    return absl::InvalidArgumentError(absl::StrCat(
        "the step over ", examples, " examples gave a non-finite loss (", pending.loss,
        ") or gradient norm (", pending.global_norm,
        "); it was not applied and the weights stay at generation ", weights_->generation.load(),
        ". Check the data's scale, or lower the learning rate or set clip_global_norm"));
  }
  // ... and only the update excludes it.
  int64_t step = 0, generation = 0;
  {
    std::optional<absl::WriterMutexLock> update;
    if (!whole_step) update.emplace(&weights_->mu);
    GS_ASSIGN_OR_RETURN(step, trainer_->ApplyStep(pending));
    generation = ++weights_->generation;
  }
  whole_step.reset();
  const absl::Duration took = absl::Now() - start;
  last_loss_ = pending.loss;
  examples_seen_ += examples;
  ++steps_applied_;
  ++steps_since_checkpoint_;
  if (options_.observer.on_step) {
    options_.observer.on_step(options_.model, options_.version, examples, pending.loss, took,
                              generation);
  }
  const int64_t every = options_.config.checkpoint_every_steps();
  if (every > 0 && steps_since_checkpoint_ >= every) {
    absl::StatusOr<CheckpointEntry> c = CheckpointLocked();
    if (!c.ok()) Log(absl::StrCat("checkpoint failed: ", c.status().message()));
  }
  BatchOutput out;
  out.generation = generation;
  out.outputs.emplace(kLossKey, Scalar<double>(DType::kDouble, pending.loss));
  out.outputs.emplace(kStepKey, Scalar<int64_t>(DType::kInt64, step));
  return out;
}

absl::StatusOr<CheckpointEntry> OnlineTrainer::CheckpointLocked() {
  GS_ASSIGN_OR_RETURN(auto tensors, trainer_->StateTensors());
  absl::StatusOr<CheckpointEntry> entry =
      store_.Write(std::move(tensors), trainer_->step(), weights_->generation.load());
  // A failure waits for the next cadence rather than retrying at once.
  last_checkpoint_time_ = absl::Now();
  if (!entry.ok()) return entry.status();
  steps_since_checkpoint_ = 0;
  last_checkpoint_ = *entry;
  if (options_.observer.on_checkpoint) {
    options_.observer.on_checkpoint(options_.model, options_.version, *entry);
  }
  return entry;
}

absl::StatusOr<CheckpointEntry> OnlineTrainer::Checkpoint() {
  absl::MutexLock lock(&train_mu_);
  return CheckpointLocked();
}

void OnlineTrainer::TimerLoop() {
  const absl::Duration every = absl::Seconds(options_.config.checkpoint_every_seconds());
  absl::MutexLock lock(&train_mu_);
  while (!stopping_) {
    const absl::Time due = last_checkpoint_time_ + every;
    if (absl::Now() >= due) {
      if (steps_since_checkpoint_ > 0) {
        absl::StatusOr<CheckpointEntry> c = CheckpointLocked();
        if (!c.ok()) Log(absl::StrCat("checkpoint failed: ", c.status().message()));
      } else {
        last_checkpoint_time_ = absl::Now();  // nothing new to save
      }
      continue;
    }
    timer_cv_.WaitWithDeadline(&train_mu_, due);
  }
}

absl::StatusOr<OnlineTrainer::Exported> OnlineTrainer::Export(const std::string& model_dir,
                                                              int64_t version) {
  absl::MutexLock lock(&train_mu_);
  GS_CHECK_ARG(version >= 0, "export_version must be >= 0 (0: the next free number), got ",
               version);
  Exported out;
  if (version == 0) {
    const std::vector<int64_t> versions = VersionFolders(model_dir);
    version = versions.empty() ? 1 : versions.back() + 1;
  }
  out.version = version;
  out.path = absl::StrCat(model_dir, "/", out.version);
  std::error_code ec;
  if (fs::exists(out.path, ec)) {
    return absl::AlreadyExistsError(absl::StrCat(
        "version ", out.version, " of model '", options_.model, "' already exists at ", out.path,
        "; choose another export_version or 0 for the next free one"));
  }
  // Built aside (a dot folder, which the repository scan ignores), then renamed
  // into place: the version appears whole or not at all.
  const std::string temp =
      absl::StrCat(model_dir, "/.export-", out.version, ".tmp-", ::getpid());
  fs::remove_all(temp, ec);
  absl::Status saved = trainer_->Save(temp);
  if (saved.ok() && ::rename(temp.c_str(), out.path.c_str()) != 0) {
    saved = absl::ErrnoToStatus(errno, absl::StrCat("cannot rename ", temp, " to ", out.path));
  }
  if (!saved.ok()) {
    fs::remove_all(temp, ec);
    return saved;
  }
  GS_RETURN_IF_ERROR(SyncDirectory(model_dir));
  out.step = trainer_->step();
  out.generation = weights_->generation.load();
  return out;
}

absl::StatusOr<OnlineTrainer::RolledBack> OnlineTrainer::Rollback(const std::string& name) {
  absl::MutexLock lock(&train_mu_);
  auto skipped = [this](const CheckpointEntry& e, const absl::Status& why) {
    Log(absl::StrCat("rollback skips checkpoint ", e.path, ": ", why.message()));
  };
  absl::StatusOr<std::pair<CheckpointEntry, gradserve::Checkpoint>> read =
      name.empty() ? store_.ReadNewestValid([](const auto&) { return absl::OkStatus(); },
                                            skipped)
                   : store_.Read(name);
  GS_RETURN_IF_ERROR(read.status());
  RolledBack out;
  out.restored = read->first;
  {
    absl::WriterMutexLock w(&weights_->mu);
    absl::Status restored = trainer_->RestoreState(read->second.tensors);
    if (!restored.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "checkpoint ", read->first.name, " does not fit this model: ", restored.message()));
    }
    out.generation = ++weights_->generation;
  }
  out.step = trainer_->step();
  // The rolled-back state is now the newest: a restart resumes from it.
  GS_RETURN_IF_ERROR(CheckpointLocked().status());
  return out;
}

TrainingStatusInfo OnlineTrainer::Status() const {
  TrainingStatusInfo s;
  s.optimizer = OptimizerConfigFor(options_.config).kind;
  s.batch_size = options_.config.batch_size();
  s.step = trainer_->step();
  s.generation = weights_->generation.load();
  s.last_loss = last_loss_.load();
  s.examples_seen = examples_seen_.load();
  s.steps_applied = steps_applied_.load();
  s.nonfinite_steps = nonfinite_steps_.load();
  s.queue_depth = batcher_ ? batcher_->queued() : 0;
  s.checkpoints = store_.List();
  s.checkpoint_dir = store_.dir();
  absl::MutexLock lock(&train_mu_);
  s.last_checkpoint = last_checkpoint_;
  return s;
}

void OnlineTrainer::Drain() {
  if (batcher_) batcher_->Drain();
  {
    absl::MutexLock lock(&train_mu_);
    stopping_ = true;
    timer_cv_.SignalAll();
  }
  if (timer_.joinable()) timer_.join();
  absl::MutexLock lock(&train_mu_);
  if (steps_since_checkpoint_ > 0) {
    absl::StatusOr<CheckpointEntry> c = CheckpointLocked();
    if (!c.ok()) Log(absl::StrCat("final checkpoint failed: ", c.status().message()));
  }
}

}  // namespace gradserve::serving
