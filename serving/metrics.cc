#include "serving/metrics.h"

#include <unistd.h>

#include <exception>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>

#include "absl/memory/memory.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "prometheus/exposer.h"
#include "prometheus/text_serializer.h"
#include "runtime/device.h"

namespace gradserve::serving {
namespace {

using prometheus::ClientMetric;
using prometheus::MetricFamily;
using prometheus::MetricType;

absl::Status CheckBuckets(const std::vector<double>& buckets, absl::string_view what) {
  if (buckets.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  for (size_t i = 1; i < buckets.size(); ++i) {
    if (!(buckets[i - 1] < buckets[i])) {
      return absl::InvalidArgumentError(absl::StrCat(what, " must be strictly increasing; bucket ",
                                                     i, " is ", buckets[i], " after ",
                                                     buckets[i - 1]));
    }
  }
  return absl::OkStatus();
}

MetricFamily OneValue(const MetricDef& def, MetricType type, double value) {
  ClientMetric m;
  if (type == MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  return MetricFamily{def.name, def.help, type, {m}};
}

// The whitespace-separated fields of /proc/self/stat after the command name
// (which may hold spaces and parentheses, so split after the last ')'):
// fields[0] is field 3 of proc(5) (state), fields[i] is field i + 3.
std::vector<std::string> ProcSelfStatFields() {
  std::ifstream in("/proc/self/stat");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(text.substr(close + 1));
  return {std::istream_iterator<std::string>(rest), std::istream_iterator<std::string>()};
}

// Seconds since the epoch at boot ("btime" of /proc/stat); -1 when unknown.
double BootTimeSeconds() {
  std::ifstream in("/proc/stat");
  std::string key;
  double value = 0;
  while (in >> key) {
    if (key == "btime" && in >> value) return value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  return -1;
}

}  // namespace

std::vector<double> DefaultLatencyBucketsSeconds() {
  return {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
          0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,    10};
}

std::vector<double> DefaultLoadBucketsSeconds() {
  return {0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 25, 50, 100};
}

std::vector<double> BatchSizeBuckets(int64_t max) {
  std::vector<double> buckets = {1};
  for (int64_t b = 2; b / 2 < max; b *= 2) buckets.push_back(static_cast<double>(b));
  return buckets;
}

// -- Metrics ------------------------------------------------------------------

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Create(const MetricsOptions& options) {
  if (absl::Status s = CheckBuckets(options.latency_buckets_seconds, "latency_buckets_seconds");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckBuckets(options.load_buckets_seconds, "load_buckets_seconds");
      !s.ok()) {
    return s;
  }
  if (options.max_batch_size_bucket < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_batch_size_bucket must be >= 1, got ", options.max_batch_size_bucket));
  }
  return absl::WrapUnique(new Metrics(options));
}

Metrics::Metrics(const MetricsOptions& options)
    : options_(options),
      batch_buckets_(BatchSizeBuckets(options.max_batch_size_bucket)),
      registry_(std::make_shared<prometheus::Registry>()),
      process_(std::make_shared<ProcessCollector>()) {
  auto histogram = [this](const MetricDef& def) {
    return &prometheus::BuildHistogram().Name(def.name).Help(def.help).Register(*registry_);
  };
  requests_ = &prometheus::BuildCounter()
                   .Name(kInferenceRequests.name)
                   .Help(kInferenceRequests.help)
                   .Register(*registry_);
  request_duration_ = histogram(kRequestDuration);
  queue_duration_ = histogram(kQueueDuration);
  compute_duration_ = histogram(kComputeDuration);
  batch_size_ = histogram(kBatchSize);
  load_duration_ = histogram(kModelLoadDuration);
  auto counter = [this](const MetricDef& def) {
    return &prometheus::BuildCounter().Name(def.name).Help(def.help).Register(*registry_);
  };
  auto gauge = [this](const MetricDef& def) {
    return &prometheus::BuildGauge().Name(def.name).Help(def.help).Register(*registry_);
  };
  ready_ = gauge(kModelReady);
  train_requests_ = counter(kTrainRequests);
  train_steps_ = counter(kTrainSteps);
  train_examples_ = counter(kTrainExamples);
  train_skipped_ = counter(kTrainSkippedExamples);
  train_nonfinite_ = counter(kTrainNonfiniteSteps);
  train_loss_ = gauge(kTrainLoss);
  train_step_duration_ = histogram(kTrainStepDuration);
  checkpoint_time_ = gauge(kCheckpointLastSuccess);
  prometheus::BuildGauge()
      .Name(kBuildInfo.name)
      .Help(kBuildInfo.help)
      .Register(*registry_)
      .Add({{"version", kServerVersion}})
      .Set(1);
}

void Metrics::InstallHooks(ModelManagerOptions* options) {
  InferObserver& observer = options->observer;
  observer.on_request = [this, next = std::move(observer.on_request)](
                            const std::string& model, int64_t version, const std::string& outcome,
                            absl::Duration request, absl::Duration queue, absl::Duration compute) {
    RecordRequest(model, version, outcome, request, queue, compute);
    if (next) next(model, version, outcome, request, queue, compute);
  };
  observer.on_batch = [this, next = std::move(observer.on_batch)](const std::string& model,
                                                                  int64_t version, int64_t rows) {
    RecordBatch(model, version, rows);
    if (next) next(model, version, rows);
  };
  TrainObserver& train = options->training.observer;
  auto labels = [](const std::string& model, int64_t version) -> prometheus::Labels {
    return {{"model", model}, {"version", std::to_string(version)}};
  };
  // The counters exist from the start at 0, so rate() and increase() see
  // their first event.
  train.on_start = [this, labels, next = std::move(train.on_start)](const std::string& model,
                                                                    int64_t version) {
    const prometheus::Labels l = labels(model, version);
    for (auto* family : {train_steps_, train_examples_, train_skipped_, train_nonfinite_}) {
      family->Add(l);
    }
    prometheus::Labels success = l;
    success["outcome"] = "success";
    train_requests_->Add(success);
    if (next) next(model, version);
  };
  train.on_request = [this, next = std::move(train.on_request)](
                         const std::string& model, int64_t version, const std::string& outcome) {
    RecordTrainRequest(model, std::to_string(version), outcome);
    if (next) next(model, version, outcome);
  };
  train.on_step = [this, next = std::move(train.on_step)](
                      const std::string& model, int64_t version, int64_t examples, double loss,
                      absl::Duration duration, int64_t generation) {
    RecordStep(model, version, examples, loss, duration);
    if (next) next(model, version, examples, loss, duration, generation);
  };
  train.on_nonfinite_step = [this, labels, next = std::move(train.on_nonfinite_step)](
                                const std::string& model, int64_t version) {
    train_nonfinite_->Add(labels(model, version)).Increment();
    if (next) next(model, version);
  };
  train.on_skipped_examples = [this, labels, next = std::move(train.on_skipped_examples)](
                                  const std::string& model, int64_t version, int64_t n) {
    train_skipped_->Add(labels(model, version)).Increment(static_cast<double>(n));
    if (next) next(model, version, n);
  };
  train.on_checkpoint = [this, labels, next = std::move(train.on_checkpoint)](
                            const std::string& model, int64_t version, const CheckpointEntry& e) {
    checkpoint_time_->Add(labels(model, version)).Set(absl::ToDoubleSeconds(e.time - absl::UnixEpoch()));
    if (next) next(model, version, e);
  };
  options->on_load = [this, next = std::move(options->on_load)](
                         const std::string& model, int64_t version, double seconds, bool ok) {
    RecordLoad(model, version, seconds, ok);
    if (next) next(model, version, seconds, ok);
  };
  options->on_state = [this, next = std::move(options->on_state)](
                          const std::string& model, int64_t version, VersionState state) {
    RecordState(model, version, state);
    if (next) next(model, version, state);
  };
}

InferenceService::RejectObserver Metrics::RejectHook() {
  return [this](const std::string& model, const std::string& version, const absl::Status& status) {
    RecordRejected(model, version, status);
  };
}

TrainingService::RejectObserver Metrics::TrainRejectHook() {
  return [this](const std::string& model, const std::string& version, const absl::Status& status) {
    train_requests_->Add(KnownLabels(model, version, status)).Increment();
  };
}

void Metrics::RecordTrainRequest(const std::string& model, const std::string& version,
                                 const std::string& outcome) {
  train_requests_->Add({{"model", model}, {"version", version}, {"outcome", outcome}}).Increment();
}

void Metrics::RecordStep(const std::string& model, int64_t version, int64_t examples,
                         double loss, absl::Duration duration) {
  const prometheus::Labels labels = {{"model", model}, {"version", std::to_string(version)}};
  train_steps_->Add(labels).Increment();
  train_examples_->Add(labels).Increment(static_cast<double>(examples));
  train_loss_->Add(labels).Set(loss);
  For(model, version).train_step->Observe(absl::ToDoubleSeconds(duration));
}

Metrics::VersionMetrics Metrics::For(const std::string& model, int64_t version) {
  absl::MutexLock lock(&mu_);
  VersionMetrics& m = versions_[{model, version}];
  if (m.request == nullptr) {
    const prometheus::Labels labels = {{"model", model}, {"version", std::to_string(version)}};
    m.request = &request_duration_->Add(labels, options_.latency_buckets_seconds);
    m.queue = &queue_duration_->Add(labels, options_.latency_buckets_seconds);
    m.compute = &compute_duration_->Add(labels, options_.latency_buckets_seconds);
    m.batch = &batch_size_->Add(labels, batch_buckets_);
    m.train_step = &train_step_duration_->Add(labels, options_.latency_buckets_seconds);
  }
  return m;
}

void Metrics::RecordRequest(const std::string& model, int64_t version, const std::string& outcome,
                            absl::Duration request, absl::Duration queue, absl::Duration compute) {
  requests_->Add({{"model", model}, {"version", std::to_string(version)}, {"outcome", outcome}})
      .Increment();
  // Failed requests' durations would mix fast rejections with real latency:
  // they are counted above only.
  if (outcome != "success") return;
  const VersionMetrics m = For(model, version);
  m.request->Observe(absl::ToDoubleSeconds(request));
  m.queue->Observe(absl::ToDoubleSeconds(queue));
  m.compute->Observe(absl::ToDoubleSeconds(compute));
}

void Metrics::RecordBatch(const std::string& model, int64_t version, int64_t rows) {
  For(model, version).batch->Observe(static_cast<double>(rows));
}

void Metrics::RecordLoad(const std::string& model, int64_t version, double seconds, bool ok) {
  {
    absl::MutexLock lock(&mu_);
    known_.emplace(model, std::to_string(version));
  }
  if (!ok) return;
  load_duration_
      ->Add({{"model", model}, {"version", std::to_string(version)}}, options_.load_buckets_seconds)
      .Observe(seconds);
}

void Metrics::RecordState(const std::string& model, int64_t version, VersionState state) {
  {
    absl::MutexLock lock(&mu_);
    known_.emplace(model, std::to_string(version));
  }
  ready_->Add({{"model", model}, {"version", std::to_string(version)}})
      .Set(state == VersionState::kReady ? 1 : 0);
}

void Metrics::RecordRejected(const std::string& model, const std::string& version,
                             const absl::Status& status) {
  requests_->Add(KnownLabels(model, version, status)).Increment();
}

prometheus::Labels Metrics::KnownLabels(const std::string& model, const std::string& version,
                                        const absl::Status& status) const {
  std::string model_label, version_label;
  {
    absl::MutexLock lock(&mu_);
    auto it = known_.lower_bound({model, ""});
    if (it != known_.end() && it->first == model) {
      model_label = model;
      if (known_.contains({model, version})) version_label = version;
    }
  }
  return {{"model", model_label}, {"version", version_label}, {"outcome", RequestOutcome(status)}};
}

std::vector<std::shared_ptr<prometheus::Collectable>> Metrics::collectables() const {
  return {registry_, process_};
}

std::vector<MetricFamily> Metrics::Collect() const {
  std::vector<MetricFamily> out;
  for (const auto& c : collectables()) {
    std::vector<MetricFamily> families = c->Collect();
    out.insert(out.end(), std::make_move_iterator(families.begin()),
               std::make_move_iterator(families.end()));
  }
  return out;
}

std::string Metrics::Scrape() const { return prometheus::TextSerializer().Serialize(Collect()); }

// -- ProcessCollector ---------------------------------------------------------

std::vector<MetricFamily> ProcessCollector::Collect() const {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::vector<std::string> stat = ProcSelfStatFields();
  // proc(5): utime (14) and stime (15) in clock ticks; starttime (22) in clock
  // ticks since boot.
  double utime = 0, stime = 0, start = 0;
  if (stat.size() > 19 && ticks > 0 && absl::SimpleAtod(stat[11], &utime) &&
      absl::SimpleAtod(stat[12], &stime) && absl::SimpleAtod(stat[19], &start)) {
    out.push_back(OneValue(kProcessCpu, MetricType::Counter, (utime + stime) / ticks));
    const double boot = BootTimeSeconds();
    if (boot >= 0) {
      out.push_back(OneValue(kProcessStartTime, MetricType::Gauge, boot + start / ticks));
    }
  }
  // statm: total program size and resident set, in pages.
  std::ifstream statm("/proc/self/statm");
  double size = 0, resident = 0;
  if (statm >> size >> resident) {
    out.push_back(OneValue(kProcessVirtualMemory, MetricType::Gauge, size * page));
    out.push_back(OneValue(kProcessResidentMemory, MetricType::Gauge, resident * page));
  }
  // GPU memory, per device this process has used.
  const std::vector<GpuMemoryStats> gpus = GpuMemoryUsage();
  if (!gpus.empty()) {
    MetricFamily used{kDeviceMemoryUsed.name, kDeviceMemoryUsed.help, MetricType::Gauge, {}};
    MetricFamily peak{kDeviceMemoryPeak.name, kDeviceMemoryPeak.help, MetricType::Gauge, {}};
    MetricFamily pool{kDeviceMemoryPool.name, kDeviceMemoryPool.help, MetricType::Gauge, {}};
    for (const GpuMemoryStats& g : gpus) {
      auto add = [&g](MetricFamily& f, int64_t v) {
        ClientMetric m;
        m.label = {{"device", g.device}};
        m.gauge.value = static_cast<double>(v);
        f.metric.push_back(std::move(m));
      };
      add(used, g.in_use_bytes);
      add(peak, g.peak_in_use_bytes);
      add(pool, g.pool_reserved_bytes);
    }
    out.push_back(std::move(used));
    out.push_back(std::move(peak));
    out.push_back(std::move(pool));
  }
  return out;
}

// -- Queue depth --------------------------------------------------------------

QueueSource QueueSourceFor(const ModelManager* manager) {
  return [manager] {
    std::vector<QueueDepth> out;
    for (const ModelIndexEntry& e : manager->Index(/*ready_only=*/true)) {
      absl::StatusOr<std::shared_ptr<Servable>> s = manager->Get(e.name, std::to_string(e.version));
      if (!s.ok()) continue;
      const OnlineTrainer* trainer = (*s)->online_trainer();
      out.push_back({e.name, e.version, (*s)->queued(), (*s)->generation(),
                     trainer != nullptr ? trainer->queued() : -1});
    }
    return out;
  };
}

std::vector<MetricFamily> QueueCollector::Collect() const {
  MetricFamily pending{kPendingRequests.name, kPendingRequests.help, MetricType::Gauge, {}};
  MetricFamily generation{kWeightsGeneration.name, kWeightsGeneration.help, MetricType::Gauge, {}};
  MetricFamily train{kTrainQueueDepth.name, kTrainQueueDepth.help, MetricType::Gauge, {}};
  auto add = [](MetricFamily& family, const QueueDepth& q, int64_t value) {
    ClientMetric m;
    m.label = {{"model", q.model}, {"version", std::to_string(q.version)}};
    m.gauge.value = static_cast<double>(value);
    family.metric.push_back(std::move(m));
  };
  for (const QueueDepth& q : source_()) {
    add(pending, q, q.pending);
    add(generation, q, q.generation);
    if (q.train_pending >= 0) add(train, q, q.train_pending);
  }
  return {std::move(pending), std::move(generation), std::move(train)};
}

// -- MetricsExposer -----------------------------------------------------------

absl::StatusOr<std::unique_ptr<MetricsExposer>> MetricsExposer::Start(const std::string& address,
                                                                      int port,
                                                                      const Metrics& metrics,
                                                                      QueueSource queues) {
  // civetweb's listening_ports wants IPv6 addresses in brackets.
  const std::string host = absl::StrContains(address, ':') && !absl::StartsWith(address, "[")
                               ? absl::StrCat("[", address, "]")
                               : address;
  const std::string bind = absl::StrCat(host, ":", port);
  auto e = absl::WrapUnique(new MetricsExposer());
  // prometheus-cpp reports a failed bind by throwing: stop it here.
  try {
    e->exposer_ = std::make_unique<prometheus::Exposer>(bind, /*num_threads=*/2);
  } catch (const std::exception& ex) {
    return absl::UnavailableError(absl::StrCat("cannot serve metrics on ", bind, ": ", ex.what()));
  }
  const std::vector<int> ports = e->exposer_->GetListeningPorts();
  if (ports.empty()) {
    return absl::InternalError(absl::StrCat("the metrics server on ", bind, " has no port"));
  }
  e->port_ = ports.front();
  e->queues_ = std::make_shared<QueueCollector>(std::move(queues));
  for (const auto& c : metrics.collectables()) e->exposer_->RegisterCollectable(c, "/metrics");
  e->exposer_->RegisterCollectable(e->queues_, "/metrics");
  return e;
}

MetricsExposer::~MetricsExposer() = default;

}  // namespace gradserve::serving
