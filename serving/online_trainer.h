// OnlineTrainer: the training side of a served model version (DESIGN.md §2
// "Train"). Train requests are validated against the `train` signature and
// queue in a DynamicBatcher of their own (one worker), which concatenates them
// into mini-batches of up to batch_size examples; each mini-batch is one
// optimizer step on the same session, and so the same variables, that serve.
//
// Note [Weights generations]: every inference batch holds ServingWeights::mu
// shared for its whole run and reports the generation it read under it. A step
// computes the loss and gradients (Trainer::ComputeStep) under no lock: it only
// reads the variables, like inference. Only the update (Trainer::ApplyStep)
// takes the lock exclusively, and bumps the generation before releasing it. So
// an inference batch sees one generation's weights from start to end, an
// update becomes visible between batches, and inference waits at most one
// update (an element-wise pass over the parameters), not a whole step. A step
// whose loss or gradient norm is not finite is never applied. A rollback swaps
// the weights under the same exclusive lock. docs/architecture.md gives the
// measurements behind this choice.
//
// Durability: checkpoints (CheckpointStore) every checkpoint_every_steps steps
// and/or checkpoint_every_seconds seconds (a timer thread), on ModelCheckpoint,
// after a rollback, and on Drain (unload, SIGTERM). Create resumes from the
// newest intact checkpoint that fits the model.
//
// Thread safety: all methods are thread-safe; steps, checkpoints, exports and
// rollbacks are serialized.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/model_config.pb.h"
#include "runtime/trainer.h"
#include "serving/batcher.h"
#include "serving/checkpoint_store.h"

namespace gradserve::serving {

// The served weights' generation and the lock of Note [Weights generations].
struct ServingWeights {
  absl::Mutex mu;
  std::atomic<int64_t> generation{0};
};

struct TrainRequest {
  std::string id;
  std::vector<std::pair<std::string, Tensor>> inputs;  // train signature key -> tensor
  absl::Time deadline = absl::InfiniteFuture();
};

struct TrainResult {
  std::string id;
  double loss = 0;  // the step's mean loss
  int64_t step = 0;
  int64_t generation = 0;
  int64_t examples_in_step = 0;
};
using TrainCallback = std::function<void(absl::StatusOr<TrainResult>)>;

struct TrainingStatusInfo {
  OptimizerKind optimizer = OptimizerKind::kAdam;
  int64_t batch_size = 0;
  int64_t step = 0;
  int64_t generation = 0;
  double last_loss = 0;  // NaN before the first step
  int64_t examples_seen = 0, steps_applied = 0, nonfinite_steps = 0;
  int64_t queue_depth = 0;
  std::optional<CheckpointEntry> last_checkpoint;
  std::vector<CheckpointEntry> checkpoints;  // newest first
  std::string checkpoint_dir;
};

// Hooks the metrics layer and the server's log install (all optional); they
// run on the trainer's threads.
struct TrainObserver {
  // Once, when the version's trainer starts (before any request).
  std::function<void(const std::string& model, int64_t version)> on_start;
  // Each Train request's outcome: "success" or the failure's status code in
  // lower case (as InferObserver's).
  std::function<void(const std::string& model, int64_t version, const std::string& outcome)>
      on_request;
  // Each applied step.
  std::function<void(const std::string& model, int64_t version, int64_t examples, double loss,
                     absl::Duration duration, int64_t generation)>
      on_step;
  std::function<void(const std::string& model, int64_t version)> on_nonfinite_step;
  // Examples dropped for non-finite values (nonfinite: SKIP).
  std::function<void(const std::string& model, int64_t version, int64_t examples)>
      on_skipped_examples;
  std::function<void(const std::string& model, int64_t version, const CheckpointEntry&)>
      on_checkpoint;
  // A line for the server's log (resumes, skipped checkpoints, failures).
  std::function<void(const std::string& line)> log;
};

struct OnlineTrainerOptions {
  std::string model;
  int64_t version = 0;
  inference::ModelTrainingConfig config;  // completed: see CompleteTrainingConfig
  std::string checkpoint_dir;
  TrainObserver observer;
  // Holds the weights lock exclusively for the whole step, not only the
  // update: the simpler alternative to Note [Weights generations], kept for
  // bench/train_serving_bench.cc's comparison.
  bool lock_whole_step = false;
};

// The optimizer of a training config (defaults: Keras's Adam).
OptimizerConfig OptimizerConfigFor(const inference::ModelTrainingConfig& config);
// Fills unset fields with the server's defaults (batch_size: the model's
// max_batch_size, or 32 without batching; max_queue_size 256 requests;
// max_queue_delay 1000 µs; keep_checkpoints 5) and checks ranges:
// InvalidArgument naming the field.
absl::Status CompleteTrainingConfig(int64_t max_batch_size,
                                    inference::ModelTrainingConfig* config);

class OnlineTrainer {
 public:
  // Takes the servable's trainer (whose session serves) and `weights`, which
  // must outlive it; resumes from the newest usable checkpoint in
  // options.checkpoint_dir (logging any it skips) and starts the step and
  // checkpoint threads.
  static absl::StatusOr<std::unique_ptr<OnlineTrainer>> Create(std::unique_ptr<Trainer> trainer,
                                                               ServingWeights* weights,
                                                               OnlineTrainerOptions options);
  ~OnlineTrainer();  // Drain()

  // Validates and queues; `done` is called exactly once. INVALID_ARGUMENT for
  // an unknown, missing, duplicated or ill-typed input, inputs disagreeing on
  // the batch, more examples than batch_size, a label outside [0, classes),
  // non-finite values (nonfinite: REJECT, or SKIP leaving no example), or a
  // step with a non-finite loss or gradient norm (not applied);
  // RESOURCE_EXHAUSTED (queue full); DEADLINE_EXCEEDED; UNAVAILABLE (draining).
  void Train(TrainRequest request, TrainCallback done);

  // Writes a checkpoint of the current state now.
  absl::StatusOr<CheckpointEntry> Checkpoint() ABSL_LOCKS_EXCLUDED(train_mu_);
  // Writes the current weights (and optimizer state) as saved model
  // `<model_dir>/<version>` (0: one past the highest numbered folder), built
  // in a temporary folder and renamed into place. ALREADY_EXISTS when taken.
  struct Exported {
    int64_t version = 0;
    std::string path;
    int64_t step = 0, generation = 0;
  };
  absl::StatusOr<Exported> Export(const std::string& model_dir, int64_t version)
      ABSL_LOCKS_EXCLUDED(train_mu_);
  // Restores checkpoint `name` ("" = the newest intact one), publishes it as a
  // new generation and checkpoints it (so a restart resumes from it).
  // NOT_FOUND, DATA_LOSS (corrupt), FAILED_PRECONDITION (does not fit).
  struct RolledBack {
    CheckpointEntry restored;
    int64_t step = 0, generation = 0;
  };
  absl::StatusOr<RolledBack> Rollback(const std::string& name) ABSL_LOCKS_EXCLUDED(train_mu_);

  TrainingStatusInfo Status() const ABSL_LOCKS_EXCLUDED(train_mu_);

  // Stops accepting requests, runs the queued ones, stops the timer and
  // writes a final checkpoint when a step was applied since the last one.
  void Drain() ABSL_LOCKS_EXCLUDED(train_mu_);

  const Trainer& trainer() const { return *trainer_; }
  int64_t queued() const { return batcher_->queued(); }
  const inference::ModelTrainingConfig& config() const { return options_.config; }

 private:
  OnlineTrainer(std::unique_ptr<Trainer> trainer, ServingWeights* weights,
                OnlineTrainerOptions options);
  absl::Status Validate(TrainRequest& request, BatchTask* task) const;
  absl::StatusOr<BatchOutput> RunStep(const TensorMap& inputs) ABSL_LOCKS_EXCLUDED(train_mu_);
  absl::StatusOr<CheckpointEntry> CheckpointLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(train_mu_);
  void Resume();
  void TimerLoop() ABSL_LOCKS_EXCLUDED(train_mu_);
  void Log(const std::string& line) const;

  const std::unique_ptr<Trainer> trainer_;
  ServingWeights* const weights_;
  const OnlineTrainerOptions options_;
  const CheckpointStore store_;
  std::unique_ptr<DynamicBatcher> batcher_;

  mutable absl::Mutex train_mu_;  // one step, checkpoint, export or rollback at a time
  int64_t steps_since_checkpoint_ ABSL_GUARDED_BY(train_mu_) = 0;
  absl::Time last_checkpoint_time_ ABSL_GUARDED_BY(train_mu_);
  std::optional<CheckpointEntry> last_checkpoint_ ABSL_GUARDED_BY(train_mu_);
  bool stopping_ ABSL_GUARDED_BY(train_mu_) = false;
  absl::CondVar timer_cv_;
  std::thread timer_;

  std::atomic<double> last_loss_;
  std::atomic<int64_t> examples_seen_{0}, steps_applied_{0}, nonfinite_steps_{0};
};

}  // namespace gradserve::serving
