// Servable: one loaded version of a model — its saved model in a session, its
// completed config, its dynamic batcher and its statistics. The model manager
// hands out shared_ptr<Servable> as the handle that pins a version while a
// request uses it (TensorFlow Serving's ServableHandle): a version being
// unloaded drains its batcher, and is destroyed when the last handle goes.
//
// Thread safety: Infer and the accessors are thread-safe.
//
// Note [Graph batch sizes]: a version on a GPU whose config sets
// optimization.cuda.graphs runs its batches as device graphs (Note [Device
// graphs], runtime/executor.h), which are recorded per set of input shapes.
// So that a few recordings serve every batch, only the sizes of
// DeviceGraphBatchSizes (serving/model_config.h) are recorded: a batch of
// `rows` rows is padded with zero rows to the smallest of them >= rows, run,
// and each output whose dimension 0 is the padded size is cut back to its
// first `rows` rows. A served model computes each row from that row's inputs
// alone (batching already relies on it), so the padding changes no answer;
// stats and metrics count the real rows. A batch larger than every size runs
// without a graph. Without batching (max_batch_size 0) the model's one shape
// runs as a graph, unpadded. WarmUp runs each size twice (the first run at a
// shape goes the usual way, the second records), so the first request
// replays, and logs which sizes recorded; a size that did not record runs
// the usual way. (Warm-up fetches every output; a request for fewer is
// another executor, which records on its own second batch of a size.) On the
// CPU the setting does nothing; Load logs so.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "proto/grpc_service.pb.h"
#include "proto/model_config.pb.h"
#include "runtime/saved_model_loader.h"
#include "serving/batcher.h"
#include "serving/online_trainer.h"

namespace gradserve::serving {

// A protocol-independent inference request: front ends decode the wire form
// into this, and encode InferResult back.
struct InferRequest {
  std::string model_name;
  std::string model_version;  // "" = the version policy's choice
  std::string id;
  std::vector<std::pair<std::string, Tensor>> inputs;
  std::vector<std::string> requested_outputs;  // "" entries not allowed; empty = all
  absl::Time deadline = absl::InfiniteFuture();
};

struct InferResult {
  std::string model_name;
  int64_t model_version = 0;
  std::string id;
  std::vector<std::pair<std::string, Tensor>> outputs;  // requested order, else config order
  int64_t weights_generation = 0;
  int64_t batch_size = 0;  // rows of the batch it ran in (1 without batching)
};
using InferCallback = std::function<void(absl::StatusOr<InferResult>)>;

// Counters for ModelStatistics (Triton's InferStatistics), in nanoseconds.
struct ServableStats {
  std::atomic<int64_t> success_count{0}, success_ns{0};
  std::atomic<int64_t> fail_count{0}, fail_ns{0};
  std::atomic<int64_t> queue_count{0}, queue_ns{0};
  std::atomic<int64_t> compute_count{0}, compute_ns{0};
  std::atomic<int64_t> inference_count{0};  // rows (examples) inferred
  std::atomic<int64_t> execution_count{0};  // batches run
  std::atomic<int64_t> last_inference_ms{0};
};

// Hooks the metrics layer installs (all optional).
struct InferObserver {
  // After each request: its outcome ("success" or a failure reason), and the
  // request, queue and compute durations (queue/compute zero when it never ran).
  std::function<void(const std::string& model, int64_t version, const std::string& outcome,
                     absl::Duration request, absl::Duration queue, absl::Duration compute)>
      on_request;
  // After each executed batch: its rows.
  std::function<void(const std::string& model, int64_t version, int64_t rows)> on_batch;
};

// Where a trainable version keeps its checkpoints, and the trainer's hooks.
struct TrainingOptions {
  // "" = <model_dir>/<version>/checkpoints; else <checkpoint_root>/<model>/<version>.
  std::string checkpoint_root;
  TrainObserver observer;
  bool lock_whole_step = false;  // OnlineTrainerOptions::lock_whole_step
};

class Servable {
 public:
  // Loads <model_dir>/<version>, completes `config` against its
  // serving_default signature and starts the batcher. With training enabled
  // in the config and a `train` signature in the model, the session also
  // holds the training step and an OnlineTrainer (resumed from its newest
  // checkpoint) serves Train requests; without the signature the version
  // serves and Train reports why it cannot. Errors name the version directory.
  static absl::StatusOr<std::shared_ptr<Servable>> Load(const std::string& model_dir,
                                                        int64_t version,
                                                        inference::ModelConfig config,
                                                        const SessionOptions& session_options,
                                                        InferObserver observer = {},
                                                        TrainingOptions training = {});
  ~Servable();

  // Validates `request` against the config and queues it; `done` is called
  // exactly once, on success or failure. Errors: INVALID_ARGUMENT naming the
  // input or output (unknown, missing, duplicated, wrong datatype or shape,
  // batch over max_batch_size), RESOURCE_EXHAUSTED (queue full),
  // DEADLINE_EXCEEDED (expired while queued), UNAVAILABLE (unloading).
  void Infer(InferRequest request, InferCallback done);

  // Runs each config warm-up (model_warmup: batch_size, inputs from zero_data,
  // random_data or a raw file in <model>/warmup/, `count` times) and, without
  // any, one batch of random inputs of every size in preferred_batch_size (or
  // 1), so the first real request does not pay for executor creation. Then,
  // with device graphs, records one per graph batch size (Note [Graph batch
  // sizes]) and logs the outcome; a graph that does not record is no error.
  // Errors name the warm-up; the version then fails to load. Warm-ups are not
  // traffic: stats and observers do not see them.
  absl::Status WarmUp();

  // Queues `request` for the version's trainer; `done` is called exactly
  // once. FAILED_PRECONDITION when the version does not train (see
  // TrainingAvailable); otherwise OnlineTrainer::Train's outcome.
  void Train(TrainRequest request, TrainCallback done);
  // OK when the version trains; else FAILED_PRECONDITION saying why not.
  absl::Status TrainingAvailable() const;
  OnlineTrainer* online_trainer() const { return online_.get(); }

  // Stops accepting requests and waits for queued and running ones (and, when
  // it trains, writes its final checkpoint).
  void Drain();

  const std::string& name() const { return config_.name(); }
  int64_t version() const { return version_; }
  const inference::ModelConfig& config() const { return config_; }
  const SavedModelBundle& bundle() const { return *active_; }
  const ServableStats& stats() const { return stats_; }
  int64_t queued() const { return batcher_->queued(); }
  // The weights generation: bumped by each applied training step or rollback.
  int64_t generation() const { return weights_.generation.load(); }

 private:
  Servable() = default;
  // Runs one batch, as a device graph when it fits a graph batch size (Note
  // [Graph batch sizes]). `warm_up`: not traffic, so not counted in stats_ nor
  // reported to observer_.on_batch. `metadata` (may be null): what the run
  // did with a device graph.
  absl::StatusOr<BatchOutput> RunBatch(const TensorMap& inputs,
                                       const std::vector<std::string>& outputs,
                                       bool warm_up = false, RunMetadata* metadata = nullptr);
  // The size a batch of `rows` rows runs as a device graph at (>= rows), or 0
  // to run it without one.
  int64_t GraphBatchSize(int64_t rows) const;
  // Runs a batch of random inputs at each graph batch size twice and logs
  // which recorded a graph.
  absl::Status RecordDeviceGraphs(const std::vector<std::string>& outputs, std::mt19937& rng);
  absl::Status Validate(const InferRequest& request, BatchTask* task) const;
  void Finish(const InferCallback& done, absl::Time start, absl::StatusOr<InferResult> result,
              absl::Duration queue, absl::Duration compute);

  absl::StatusOr<TensorMap> WarmupInputs(const inference::ModelWarmup& warmup,
                                         std::mt19937& rng) const;
  // A batch of `rows` rows of random inputs (dims of any size: 1).
  absl::StatusOr<TensorMap> RandomInputs(int64_t rows, std::mt19937& rng) const;

  std::string model_dir_;
  int64_t version_ = 0;
  inference::ModelConfig config_;
  SavedModelBundle bundle_;  // without training; else the trainer's is used
  const SavedModelBundle* active_ = &bundle_;
  const SignatureDef* signature_ = nullptr;  // serving_default, in active_->meta
  ServableStats stats_;
  InferObserver observer_;
  ServingWeights weights_;   // Note [Weights generations]
  std::string no_training_;  // why Train is refused, when online_ is null
  // Set by Load, read-only afterwards.
  // Note [Graph batch sizes]: ascending; empty when batches run without graphs.
  std::vector<int64_t> graph_batch_sizes_;
  std::function<void(const std::string& line)> log_;  // the server's log; may be empty
  // Declared before batcher_ so that the batcher, whose batches run on the
  // trainer's session, is destroyed first.
  std::unique_ptr<OnlineTrainer> online_;
  std::unique_ptr<DynamicBatcher> batcher_;
};

}  // namespace gradserve::serving
