// Metrics: the server's Prometheus metrics (DESIGN §6), served at /metrics on
// --metrics-port by MetricsExposer. README "## Metrics" lists every family.
//
//   Metrics          the registry; its hooks go into ModelManagerOptions
//                    (InferObserver, on_load, on_state) and InferenceService
//                    (requests rejected before reaching a version).
//   ProcessCollector process CPU and memory, read from /proc at scrape time.
//   QueueCollector   gradserve_inference_pending_requests, sampled at scrape
//                    time from a QueueSource (the model manager's versions).
//   MetricsExposer   the HTTP endpoint (prometheus-cpp's civetweb exposer).
//
// Lifetime: Metrics must outlive the ModelManager and InferenceService that
// call its hooks; a MetricsExposer must not outlive the QueueSource's manager
// (declare it after the manager, so it is destroyed first).
//
// Thread safety: all classes are thread-safe; hooks run on any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/metric_family.h"
#include "prometheus/registry.h"
#include "serving/inference_service.h"
#include "serving/model_manager.h"
#include "serving/training_service.h"

namespace prometheus {
class Exposer;
}  // namespace prometheus

namespace gradserve::serving {

// One metric family: its name (gradserve_<subsystem>_<name>_<unit>, or the
// Prometheus client conventions' process_* names) and help text, which states
// the unit.
struct MetricDef {
  const char* name;
  const char* help;
};

// Labels {model, version, outcome}. outcome: "success", or the failure's
// status code in lower case ("invalid_argument", "not_found", ...).
inline constexpr MetricDef kInferenceRequests{
    "gradserve_inference_requests_total",
    "Inference requests (count), by model, version and outcome: success or the status code of "
    "the failure in lower case (invalid_argument, resource_exhausted, deadline_exceeded, "
    "unavailable, not_found, internal, ...)."};
// Labels {model, version}; successful requests only.
inline constexpr MetricDef kRequestDuration{
    "gradserve_inference_request_duration_seconds",
    "Time from a request reaching its model version to its response being ready, in seconds "
    "(successful requests)."};
inline constexpr MetricDef kQueueDuration{
    "gradserve_inference_queue_duration_seconds",
    "Time a request waited in the dynamic batcher's queue before its batch ran, in seconds "
    "(successful requests)."};
inline constexpr MetricDef kComputeDuration{
    "gradserve_inference_compute_duration_seconds",
    "Time the batch a request ran in took to execute, in seconds (successful requests)."};
inline constexpr MetricDef kBatchSize{
    "gradserve_inference_batch_size",
    "Rows (examples) of each executed batch (count); warm-up batches are not counted."};
inline constexpr MetricDef kPendingRequests{
    "gradserve_inference_pending_requests",
    "Requests waiting in the model version's queue (count), sampled at scrape time."};
inline constexpr MetricDef kModelLoadDuration{
    "gradserve_model_load_duration_seconds",
    "Time to load a model version (read the saved model, build the session, warm up), in "
    "seconds (successful loads)."};
inline constexpr MetricDef kModelReady{
    "gradserve_model_ready",
    "1 while the model version is READY (serving), 0 otherwise (boolean)."};
// Training (labels {model, version}; requests also {outcome}).
inline constexpr MetricDef kTrainRequests{
    "gradserve_train_requests_total",
    "Train requests (count), by model, version and outcome: success or the status code of the "
    "rejection in lower case (failed_precondition, invalid_argument, resource_exhausted, ...)."};
inline constexpr MetricDef kTrainSteps{"gradserve_train_steps_total",
                                       "Training steps applied to the served weights (count)."};
inline constexpr MetricDef kTrainExamples{"gradserve_train_examples_total",
                                          "Examples in applied training steps (count)."};
inline constexpr MetricDef kTrainSkippedExamples{
    "gradserve_train_skipped_examples_total",
    "Training examples dropped for NaN or Inf values under training.nonfinite: SKIP (count)."};
inline constexpr MetricDef kTrainNonfiniteSteps{
    "gradserve_train_nonfinite_steps_total",
    "Training steps not applied because their loss or gradient norm was NaN or Inf (count)."};
inline constexpr MetricDef kTrainLoss{"gradserve_train_loss",
                                      "Mean loss of the last applied training step."};
inline constexpr MetricDef kTrainStepDuration{
    "gradserve_train_step_duration_seconds",
    "Time of one applied training step (forward, backward, update), in seconds."};
inline constexpr MetricDef kCheckpointLastSuccess{
    "gradserve_checkpoint_last_success_timestamp_seconds",
    "When the last training checkpoint was written, in seconds since the Unix epoch."};
// Sampled at scrape time (QueueCollector).
inline constexpr MetricDef kWeightsGeneration{
    "gradserve_weights_generation",
    "The served weights' generation (count): bumped by each applied training step or rollback."};
inline constexpr MetricDef kTrainQueueDepth{
    "gradserve_train_queue_depth",
    "Train requests waiting for a step (count), sampled at scrape time; trainable versions only."};
inline constexpr MetricDef kBuildInfo{"gradserve_build_info",
                                      "Always 1; the version label is the server's version."};
inline constexpr MetricDef kProcessCpu{"process_cpu_seconds_total",
                                       "Total user and system CPU time spent, in seconds."};
inline constexpr MetricDef kProcessResidentMemory{"process_resident_memory_bytes",
                                                  "Resident memory size, in bytes."};
// Labels {device}: one series per GPU the server has used (none without).
inline constexpr MetricDef kDeviceMemoryUsed{
    "gradserve_device_memory_used_bytes",
    "GPU memory held by live tensors, in bytes (the stream-ordered pool's allocations)."};
inline constexpr MetricDef kDeviceMemoryPeak{
    "gradserve_device_memory_peak_bytes", "Most GPU memory held by live tensors at once, in bytes."};
inline constexpr MetricDef kDeviceMemoryPool{
    "gradserve_device_memory_pool_bytes",
    "GPU memory the stream-ordered memory pool has reserved from the driver, in bytes."};
inline constexpr MetricDef kProcessVirtualMemory{"process_virtual_memory_bytes",
                                                 "Virtual memory size, in bytes."};
inline constexpr MetricDef kProcessStartTime{
    "process_start_time_seconds", "Start time of the process since the Unix epoch, in seconds."};

// Bucket upper bounds (Prometheus adds +Inf).
// 100 µs to 10 s, three per decade: 0.0001, 0.00025, 0.0005, 0.001, ..., 5, 10.
std::vector<double> DefaultLatencyBucketsSeconds();
// 10 ms to 100 s, three per decade: 0.01, 0.025, 0.05, 0.1, ..., 50, 100.
std::vector<double> DefaultLoadBucketsSeconds();
// Powers of two from 1 to `max` (rounded up to a power of two): 1, 2, 4, ...
std::vector<double> BatchSizeBuckets(int64_t max);

struct MetricsOptions {
  std::vector<double> latency_buckets_seconds = DefaultLatencyBucketsSeconds();
  std::vector<double> load_buckets_seconds = DefaultLoadBucketsSeconds();
  // The largest batch-size bucket; larger batches count in +Inf only.
  int64_t max_batch_size_bucket = 1024;
};

class Metrics {
 public:
  // InvalidArgument when a bucket list is empty or not strictly increasing.
  static absl::StatusOr<std::unique_ptr<Metrics>> Create(const MetricsOptions& options = {});

  // Adds this registry's hooks to `options`: its observer, on_load and
  // on_state (hooks already set there still run, after these).
  void InstallHooks(ModelManagerOptions* options);
  // The hook for InferenceService (requests that never reached a version).
  InferenceService::RejectObserver RejectHook();
  // The same for TrainingService (Train requests that reached no trainer).
  TrainingService::RejectObserver TrainRejectHook();

  // The hooks themselves (InstallHooks and RejectHook call these).
  void RecordRequest(const std::string& model, int64_t version, const std::string& outcome,
                     absl::Duration request, absl::Duration queue, absl::Duration compute);
  void RecordBatch(const std::string& model, int64_t version, int64_t rows);
  void RecordLoad(const std::string& model, int64_t version, double seconds, bool ok)
      ABSL_LOCKS_EXCLUDED(mu_);
  void RecordState(const std::string& model, int64_t version, VersionState state)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Labels only name a model and version this registry has seen load (else
  // ""), so clients cannot grow the label sets with made-up names.
  void RecordRejected(const std::string& model, const std::string& version,
                      const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  void RecordTrainRequest(const std::string& model, const std::string& version,
                          const std::string& outcome);
  void RecordStep(const std::string& model, int64_t version, int64_t examples, double loss,
                  absl::Duration duration);

  // What a scrape exposes (the registry, then the process metrics), and the
  // same in the Prometheus text format.
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;
  std::vector<prometheus::MetricFamily> Collect() const;
  std::string Scrape() const;

 private:
  explicit Metrics(const MetricsOptions& options);

  const MetricsOptions options_;
  const std::vector<double> batch_buckets_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::shared_ptr<prometheus::Collectable> process_;
  prometheus::Family<prometheus::Counter>* requests_;
  prometheus::Family<prometheus::Histogram>* request_duration_;
  prometheus::Family<prometheus::Histogram>* queue_duration_;
  prometheus::Family<prometheus::Histogram>* compute_duration_;
  prometheus::Family<prometheus::Histogram>* batch_size_;
  prometheus::Family<prometheus::Histogram>* load_duration_;
  prometheus::Family<prometheus::Gauge>* ready_;
  prometheus::Family<prometheus::Counter>* train_requests_;
  prometheus::Family<prometheus::Counter>* train_steps_;
  prometheus::Family<prometheus::Counter>* train_examples_;
  prometheus::Family<prometheus::Counter>* train_skipped_;
  prometheus::Family<prometheus::Counter>* train_nonfinite_;
  prometheus::Family<prometheus::Gauge>* train_loss_;
  prometheus::Family<prometheus::Histogram>* train_step_duration_;
  prometheus::Family<prometheus::Gauge>* checkpoint_time_;

  // One version's histograms (owned by their families, which never remove them).
  struct VersionMetrics {
    prometheus::Histogram* request = nullptr;
    prometheus::Histogram* queue = nullptr;
    prometheus::Histogram* compute = nullptr;
    prometheus::Histogram* batch = nullptr;
    prometheus::Histogram* train_step = nullptr;
  };
  VersionMetrics For(const std::string& model, int64_t version) ABSL_LOCKS_EXCLUDED(mu_);
  // {model, version, outcome} of a request that reached no version: the
  // model and version only when this registry has seen them load.
  prometheus::Labels KnownLabels(const std::string& model, const std::string& version,
                                 const absl::Status& status) const ABSL_LOCKS_EXCLUDED(mu_);

  mutable absl::Mutex mu_;
  std::map<std::pair<std::string, int64_t>, VersionMetrics> versions_ ABSL_GUARDED_BY(mu_);
  std::set<std::pair<std::string, std::string>> known_ ABSL_GUARDED_BY(mu_);  // (model, version)
};

// process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes and process_start_time_seconds of this process,
// read from /proc/self/stat, /proc/self/statm and /proc/stat at each Collect();
// a family whose file cannot be read is left out.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override;
};

// The queue depths and weights generation of each serving model version.
struct QueueDepth {
  std::string model;
  int64_t version = 0;
  int64_t pending = 0;
  int64_t generation = 0;
  int64_t train_pending = -1;  // -1: the version does not train
};
using QueueSource = std::function<std::vector<QueueDepth>()>;
// The READY versions of `manager` and their queued requests.
QueueSource QueueSourceFor(const ModelManager* manager);

// gradserve_inference_pending_requests, gradserve_weights_generation and
// gradserve_train_queue_depth {model,version} from `source`.
class QueueCollector : public prometheus::Collectable {
 public:
  explicit QueueCollector(QueueSource source) : source_(std::move(source)) {}
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const QueueSource source_;
};

// Serves `metrics` and `queues` at http://ADDRESS:PORT/metrics.
class MetricsExposer {
 public:
  // Binds `address`:`port` (port 0 picks a free one, see port()). Unavailable
  // when the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsExposer>> Start(const std::string& address, int port,
                                                               const Metrics& metrics,
                                                               QueueSource queues);
  ~MetricsExposer();  // stops serving (waits for a scrape in progress)

  int port() const { return port_; }

 private:
  MetricsExposer() = default;
  std::shared_ptr<prometheus::Collectable> queues_;
  std::unique_ptr<prometheus::Exposer> exposer_;
  int port_ = 0;
};

}  // namespace gradserve::serving
