// DynamicBatcher: the per-model-version request queue of the inference server
// (DESIGN.md §6). Requests queue; worker threads (one per model instance) form
// batches, concatenate the requests' inputs along dimension 0, run the model
// once and hand each request its own rows of every output.
//
// Note [Batch formation]: a worker takes the longest run of compatible tasks
// (same input names, dtypes and non-batch dimensions) at the head of the queue
// that fits in max_batch_size rows, and runs it as soon as
//   * it is full (max_batch_size rows, or the next task does not fit or is not
//     compatible), or
//   * a prefix of it sums to one of preferred_batch_sizes (the largest such
//     prefix runs), or
//   * its oldest task has waited max_queue_delay, or the batcher is draining;
// otherwise it sleeps until the oldest task's delay expires or a task arrives.
// So a request waits at most max_queue_delay for company plus the time for
// earlier batches to finish. A task whose deadline has passed is completed with
// DEADLINE_EXCEEDED when a worker reaches it, before it runs. With
// max_batch_size = 0 the model takes no batch dimension: every task runs alone.
//
// Thread safety: all methods are thread-safe. Completion callbacks run on a
// worker thread (or on the caller's thread for tasks Enqueue rejects: never;
// a rejected Enqueue returns its error and drops the callback).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "graph/tensor.h"

namespace gradserve::serving {

struct BatcherOptions {
  // Rows per batch at most; 0 = the model has no batch dimension (no batching).
  int64_t max_batch_size = 0;
  absl::Duration max_queue_delay = absl::ZeroDuration();
  std::vector<int64_t> preferred_batch_sizes;  // each in [1, max_batch_size]
  int64_t max_queue_size = 0;                  // queued requests; 0 = unbounded
  int num_workers = 1;                         // batches that may run at once
  // false: requests are never combined (each runs as its own batch of its rows),
  // as Triton's default scheduler does for a model without dynamic_batching.
  bool combine_requests = true;
  // false: the run's outputs describe the whole batch (a training step's loss)
  // and every task gets them whole, instead of its own rows.
  bool split_outputs = true;
  // Set: every batch's inputs are assembled in this memory, even a batch of
  // one request (a model on a GPU: GpuStagingAllocator, pinned memory the
  // device copies from by DMA). nullptr: host memory, and a single request's
  // tensors are used as they are.
  Allocator* batch_allocator = nullptr;
};

using TensorMap = std::map<std::string, Tensor>;

// A request's outcome as metrics and logs name it: "success", or the status
// code in lower case ("invalid_argument", "resource_exhausted", ...).
std::string RequestOutcome(const absl::Status& status);

// A batch (`inputs`, each of rank >= 1 with at most `rows` rows) grown to
// `rows` rows along dimension 0: each input's rows, then zero bytes, copied
// whatever the dtype, in `allocator`'s memory (nullptr: host memory). For
// device graphs recorded at fixed batch sizes (Note [Graph batch sizes],
// serving/servable.h).
TensorMap PadBatch(const TensorMap& inputs, int64_t rows, Allocator* allocator);

// What one batch run produced for one task.
struct TaskResult {
  TensorMap outputs;       // the task's own rows
  int64_t batch_size = 0;  // rows in the batch it ran in (1 without batching)
  int64_t generation = 0;  // the weights generation the batch ran against
  absl::Duration queue_time, compute_time;
};

struct BatchTask {
  TensorMap inputs;                  // dim 0 = this request's rows when batching
  std::vector<std::string> outputs;  // output names wanted (non-empty)
  absl::Time deadline = absl::InfiniteFuture();
  std::function<void(absl::StatusOr<TaskResult>)> done;

  // Set by Enqueue.
  absl::Time enqueue_time;
  int64_t rows = 1;
};

// Runs the model on a batch: inputs (concatenated), the union of the tasks'
// wanted outputs; returns the outputs (dim 0 = the batch's rows when batching)
// and the weights generation used.
struct BatchOutput {
  TensorMap outputs;
  int64_t generation = 0;
};
using BatchRunFn = std::function<absl::StatusOr<BatchOutput>(
    const TensorMap& inputs, const std::vector<std::string>& outputs)>;

class DynamicBatcher {
 public:
  // Starts options.num_workers worker threads. InvalidArgument for bad options.
  static absl::StatusOr<std::unique_ptr<DynamicBatcher>> Create(const BatcherOptions& options,
                                                                BatchRunFn run);
  // Drains (see Drain) and joins the workers.
  ~DynamicBatcher();

  // Queues `task`. Errors (the task's callback is then never called):
  // UNAVAILABLE when draining; INVALID_ARGUMENT when batching and the inputs'
  // dimension 0 differs or exceeds max_batch_size, or a scalar input;
  // RESOURCE_EXHAUSTED when max_queue_size requests are queued.
  absl::Status Enqueue(BatchTask task) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops accepting tasks, runs everything queued without waiting for company,
  // and returns when no task is queued or running.
  void Drain() ABSL_LOCKS_EXCLUDED(mu_);

  int64_t queued() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t running() const ABSL_LOCKS_EXCLUDED(mu_);
  const BatcherOptions& options() const { return options_; }

 private:
  DynamicBatcher(const BatcherOptions& options, BatchRunFn run);
  void WorkerLoop() ABSL_LOCKS_EXCLUDED(mu_);
  // Removes and returns the next batch per Note [Batch formation] (expired
  // tasks go to `expired`), or an empty vector when the worker should wait
  // (until *wake_at) or exit (stopping_ with an empty queue).
  std::vector<BatchTask> NextBatch(std::vector<BatchTask>* expired, absl::Time* wake_at)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RunBatch(std::vector<BatchTask> tasks);

  const BatcherOptions options_;
  const BatchRunFn run_;
  mutable absl::Mutex mu_;
  absl::CondVar work_cv_;  // a task arrived or draining started
  absl::CondVar idle_cv_;  // a batch finished
  std::deque<BatchTask> queue_ ABSL_GUARDED_BY(mu_);
  int64_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> workers_;
};

}  // namespace gradserve::serving
