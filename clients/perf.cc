// gradserve-perf: a load generator for Open Inference Protocol servers that
// reports what Triton's perf_analyzer reports (perf_analyzer itself does not
// run on Debian 12: its wheels need glibc 2.38). `gradserve-perf --help`.
//
// Load: closed loop (--concurrency-range: N clients, each with one request
// outstanding, sync threads or --async callbacks) or open loop
// (--request-rate-range: requests start on a constant or Poisson schedule,
// whatever is outstanding). Every request is the same one, built once from
// random inputs (floats uniform in [0, 1)) of --batch-size rows.
//
// Measurement (Note [Stable windows]): at each level, windows of
// --measurement-interval-ms are measured back to back until the last three
// agree within --stability-percentage on throughput and p99 latency (at most
// --max-trials windows); the level reports those three windows merged. The
// server's split (queue, compute, batch size) comes from the differences of
// ModelStatistics taken at the window edges.
//
// Exit status: 0 ok; 1 when the server fails (metadata, or every request of a
// level); 2 for bad flags.
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "boost/program_options.hpp"
#include "clients/client.h"
#include "clients/perf_stats.h"

namespace po = boost::program_options;

namespace gradserve::client {
namespace {

using Clock = std::chrono::steady_clock;

struct Flags {
  std::string url = "localhost:8001";
  std::string model, version;
  int64_t batch_size = 1;
  std::string concurrency_range, request_rate_range;
  std::string distribution = "constant";
  int64_t measurement_interval_ms = 5000;
  double stability_pct = 10;
  int max_trials = 10;
  std::vector<std::string> shapes;
  std::string csv;
  std::string compression = "none";
  bool async = false;
  uint64_t seed = 1;
  int64_t timeout_ms = 0;
};

// Collects the outcomes of finished requests; Take() hands over what arrived
// since the last Take. Thread-safe.
class Recorder {
 public:
  void Add(Clock::duration latency, const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (status.ok()) {
      latencies_ns_.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(latency).count());
    } else {
      ++errors_;
      if (first_error_.ok()) first_error_ = status;
    }
  }
  Window Take() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    Window w;
    w.latencies_ns.swap(latencies_ns_);
    w.completed = static_cast<int64_t>(w.latencies_ns.size());
    w.errors = errors_;
    errors_ = 0;
    return w;
  }
  absl::Status first_error() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return first_error_;
  }

 private:
  absl::Mutex mu_;
  std::vector<int64_t> latencies_ns_ ABSL_GUARDED_BY(mu_);
  int64_t errors_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

// One level's load: started by StartClosed or StartOpen, ended by Stop, which
// waits for every outstanding request. Start* and Stop are called from one
// thread; requests complete on the load's threads or on gRPC's callback threads.
class Load {
 public:
  Load(Client* client, const inference::ModelInferRequest* request, Recorder* recorder)
      : client_(client), request_(request), recorder_(recorder) {}
  ~Load() { Stop(); }

  void StartClosed(int concurrency, bool async) {
    for (int i = 0; i < concurrency; ++i) {
      if (async) {
        Issue(/*chain=*/true);
        continue;
      }
      threads_.emplace_back([this] {
        inference::ModelInferResponse response;
        while (!stopping_) {
          const Clock::time_point start = Clock::now();
          absl::Status s = client_->ModelInfer(*request_, &response);
          recorder_->Add(Clock::now() - start, s);
        }
      });
    }
  }

  void StartOpen(double rate, bool poisson, uint64_t seed) {
    threads_.emplace_back([this, rate, poisson, seed] {
      std::mt19937_64 rng(seed);
      std::exponential_distribution<double> gap(rate);
      Clock::time_point next = Clock::now();
      while (!stopping_) {
        const double seconds = poisson ? gap(rng) : 1.0 / rate;
        next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
        // Short sleeps, so that Stop never waits long for a slow schedule.
        while (!stopping_ && Clock::now() < next) {
          std::this_thread::sleep_until(
              std::min(next, Clock::now() + std::chrono::milliseconds(20)));
        }
        if (!stopping_) Issue(/*chain=*/false);
      }
    });
  }

  void Stop() {
    stopping_ = true;
    for (std::thread& t : threads_) t.join();
    threads_.clear();
    // The callbacks' last touch of `this` is their decrement: after it reads 0,
    // nothing of ours is in use.
    while (outstanding_.load() > 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }

 private:
  struct Call {
    inference::ModelInferResponse response;
    Clock::time_point start;
  };

  // Starts one async request; a chained one starts its successor when it
  // finishes (closed loop), until Stop.
  void Issue(bool chain) {
    ++outstanding_;
    auto* call = new Call;
    call->start = Clock::now();
    client_->AsyncModelInfer(request_, &call->response, [this, call, chain](absl::Status s) {
      recorder_->Add(Clock::now() - call->start, s);
      delete call;
      if (chain && !stopping_) Issue(true);
      --outstanding_;
    });
  }

  Client* const client_;
  const inference::ModelInferRequest* const request_;
  Recorder* const recorder_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::atomic<int64_t> outstanding_{0};
};

// ------------------------------------------------------------------ inputs

uint16_t FloatToHalf(float f) {
  // Values here are in [0, 1): no infinities; subnormal halves flush to zero.
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  const int exponent = static_cast<int>((bits >> 23) & 0xff) - 127 + 15;
  if (exponent <= 0) return 0;
  return static_cast<uint16_t>((exponent << 10) | ((bits >> 13) & 0x3ff));
}

// `n` random elements of `datatype`: floats uniform in [0, 1), integers in
// [0, 100), booleans 0/1.
absl::StatusOr<std::string> RandomData(const std::string& datatype, int64_t n,
                                       std::mt19937_64& rng) {
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  std::uniform_int_distribution<int> small(0, 99);
  std::string out;
  auto put = [&out](auto v) { out.append(reinterpret_cast<const char*>(&v), sizeof(v)); };
  for (int64_t i = 0; i < n; ++i) {
    if (datatype == "FP32")
      put(unit(rng));
    else if (datatype == "FP64")
      put(static_cast<double>(unit(rng)));
    else if (datatype == "FP16")
      put(FloatToHalf(unit(rng)));
    else if (datatype == "BF16") {
      const float f = unit(rng);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      put(static_cast<uint16_t>(bits >> 16));
    } else if (datatype == "BOOL")
      put(static_cast<uint8_t>(small(rng) % 2));
    else if (datatype == "INT8" || datatype == "UINT8")
      put(static_cast<uint8_t>(small(rng)));
    else if (datatype == "INT16" || datatype == "UINT16")
      put(static_cast<uint16_t>(small(rng)));
    else if (datatype == "INT32" || datatype == "UINT32")
      put(static_cast<uint32_t>(small(rng)));
    else if (datatype == "INT64" || datatype == "UINT64")
      put(static_cast<uint64_t>(small(rng)));
    else
      return absl::InvalidArgumentError(absl::StrCat("no random data for ", datatype, " inputs"));
  }
  return out;
}

// The request every client sends: the model's inputs (ModelMetadata), batch
// dimension first when the model batches (ModelConfig max_batch_size > 0).
absl::StatusOr<inference::ModelInferRequest> MakeRequest(Client& client, const Flags& f) {
  absl::StatusOr<inference::ModelMetadataResponse> metadata =
      client.ModelMetadata(f.model, f.version);
  if (!metadata.ok()) return metadata.status();
  absl::StatusOr<inference::ModelConfig> config = client.ModelConfig(f.model, f.version);
  if (!config.ok()) return config.status();
  const bool batching = config->max_batch_size() > 0;
  if (!batching && f.batch_size != 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "model '", f.model, "' has max_batch_size 0 (no batch dimension): --batch-size must be 1"));
  }
  if (batching && f.batch_size > config->max_batch_size()) {
    return absl::InvalidArgumentError(absl::StrCat("--batch-size ", f.batch_size,
                                                   " is over the model's max_batch_size ",
                                                   config->max_batch_size()));
  }
  std::vector<ShapeSpec> shapes;
  for (const std::string& s : f.shapes) {
    absl::StatusOr<ShapeSpec> spec = ParseShapeSpec(s);
    if (!spec.ok()) return spec.status();
    shapes.push_back(*std::move(spec));
  }
  std::mt19937_64 rng(f.seed);
  InferRequest request{f.model, f.version, "", {}, {}};
  for (const auto& in : metadata->inputs()) {
    std::vector<int64_t> dims(in.shape().begin() + (batching && in.shape_size() > 0 ? 1 : 0),
                              in.shape().end());
    for (const ShapeSpec& s : shapes) {
      if (s.name == in.name()) dims = s.dims;
    }
    for (int64_t d : dims) {
      if (d < 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", in.name(), "' has shape [", absl::StrJoin(in.shape(), ","),
                         "] with a dimension of any size; give --shape ", in.name(), ":d1,d2,... (",
                         batching ? "without the batch dimension)" : "the whole shape)"));
      }
    }
    if (batching) dims.insert(dims.begin(), f.batch_size);
    Tensor t{in.name(), in.datatype(), dims, {}};
    absl::StatusOr<std::string> data = RandomData(t.datatype, ElementCount(dims), rng);
    if (!data.ok()) return data.status();
    t.data = *std::move(data);
    request.inputs.push_back(std::move(t));
  }
  return Client::EncodeInferRequest(request);
}

// ------------------------------------------------------------------ measurement

struct Level {
  double value = 0;  // concurrency or request rate
  Window merged;
  LatencySummary latency;
  bool stable = false;
};

// Note [Stable windows]: windows are measured back to back (the first one
// also absorbs the ramp-up) and merged once three agree, as perf_analyzer
// does; a level that never stabilizes reports its last three windows, marked
// unstable, rather than failing the run.
absl::StatusOr<Level> Measure(Client& client, const Flags& f, Recorder& recorder, double value) {
  constexpr size_t kStableWindows = 3;
  auto snapshot = [&] { return client.ModelStatistics(f.model, f.version); };
  absl::StatusOr<inference::ModelStatisticsResponse> before = snapshot();
  recorder.Take();
  Clock::time_point t0 = Clock::now();
  std::vector<Window> windows;
  for (int trial = 0; trial < f.max_trials; ++trial) {
    std::this_thread::sleep_for(std::chrono::milliseconds(f.measurement_interval_ms));
    Window w = recorder.Take();
    const Clock::time_point t1 = Clock::now();
    w.seconds = std::chrono::duration<double>(t1 - t0).count();
    t0 = t1;
    absl::StatusOr<inference::ModelStatisticsResponse> after = snapshot();
    if (before.ok() && after.ok()) w.server = DiffStatistics(*before, *after);
    before = std::move(after);
    if (w.completed == 0 && w.errors > 0) {
      const absl::Status e = recorder.first_error();
      return absl::Status(e.code(), absl::StrCat("every request failed: ", e.message()));
    }
    std::cerr << absl::StrFormat("  window %d: %.1f infer/s, p99 %.0f us\n", trial + 1,
                                 w.RequestsPerSecond(), Summarize(w.latencies_ns).p99_us);
    windows.push_back(std::move(w));
    if (IsStable(windows, f.stability_pct, kStableWindows)) break;
  }
  Level level;
  level.value = value;
  level.stable = IsStable(windows, f.stability_pct, kStableWindows);
  const size_t keep = std::min(windows.size(), kStableWindows);
  level.merged =
      Merge(std::vector<Window>(windows.end() - static_cast<ptrdiff_t>(keep), windows.end()));
  level.latency = Summarize(level.merged.latencies_ns);
  return level;
}

// ------------------------------------------------------------------ output

constexpr char kCsvColumns[] =
    "batch_size,requests_per_s,rows_per_s,avg_us,p50_us,p90_us,p95_us,p99_us,completed,"
    "errors,server_requests,server_avg_request_us,server_avg_queue_us,server_avg_compute_us,"
    "server_avg_compute_infer_us,server_avg_batch_size,stable";

std::string CsvRow(const Level& l, int64_t batch_size) {
  const Window& w = l.merged;
  const ServerDelta& s = w.server;
  return absl::StrFormat(
      "%g,%d,%.2f,%.2f,%.1f,%.1f,%.1f,%.1f,%.1f,%d,%d,%d,%.1f,%.1f,%.1f,%.1f,%.2f,%d", l.value,
      batch_size, w.RequestsPerSecond(), w.RequestsPerSecond() * batch_size, l.latency.avg_us,
      l.latency.p50_us, l.latency.p90_us, l.latency.p95_us, l.latency.p99_us, w.completed, w.errors,
      s.requests, s.AvgRequestUs(), s.AvgQueueUs(), s.AvgComputeUs(), s.AvgComputeInferUs(),
      s.AvgBatchSize(), l.stable ? 1 : 0);
}

void PrintTable(const std::vector<Level>& levels, const Flags& f, const std::string& what) {
  std::cout << absl::StrFormat("\n%11s %10s %10s %9s %9s %9s %9s %9s | %9s %9s %9s %9s %6s %s\n",
                               what, "infer/s", "rows/s", "avg us", "p50 us", "p90 us", "p95 us",
                               "p99 us", "srv reqs", "srv us", "queue us", "compute us", "batch",
                               "");
  for (const Level& l : levels) {
    const Window& w = l.merged;
    const ServerDelta& s = w.server;
    std::cout << absl::StrFormat(
        "%11g %10.1f %10.1f %9.1f %9.1f %9.1f %9.1f %9.1f | %9d %9.1f %9.1f %9.1f %6.2f %s\n",
        l.value, w.RequestsPerSecond(), w.RequestsPerSecond() * f.batch_size, l.latency.avg_us,
        l.latency.p50_us, l.latency.p90_us, l.latency.p95_us, l.latency.p99_us, s.requests,
        s.AvgRequestUs(), s.AvgQueueUs(), s.AvgComputeUs(), s.AvgBatchSize(),
        std::string(l.stable ? "" : "(unstable)") +
            (w.errors ? absl::StrCat(" errors: ", w.errors) : ""));
  }
  std::cout << "infer/s: requests per second (rows/s = infer/s x batch size); latencies are the "
               "client's round trip;\nsrv us/queue us/compute us: the server's average per "
               "request (ModelStatistics deltas); batch: rows per model run.\n";
}

int Run(const Flags& f) {
  const bool open_loop = !f.request_rate_range.empty();
  absl::StatusOr<std::vector<double>> levels =
      open_loop ? ParseRange(f.request_rate_range, "--request-rate-range")
                : ParseRange(f.concurrency_range.empty() ? "1" : f.concurrency_range,
                             "--concurrency-range");
  ClientOptions options;
  options.url = f.url;
  options.compression = f.compression;
  if (f.timeout_ms > 0) options.timeout = absl::Milliseconds(f.timeout_ms);
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(options);
  if (!levels.ok() || !client.ok()) {
    std::cerr << "gradserve-perf: " << (levels.ok() ? client.status() : levels.status()).message()
              << "\n";
    return 2;
  }
  absl::StatusOr<inference::ModelInferRequest> request = MakeRequest(**client, f);
  if (!request.ok()) {
    std::cerr << "error: " << absl::StatusCodeToString(request.status().code()) << ": "
              << request.status().message() << "\n";
    return 1;
  }
  const std::string what = open_loop ? "request_rate" : "concurrency";
  std::cout << absl::StrFormat(
      "model %s%s, batch size %d, %s, windows of %d ms until 3 agree within %g%% (at most %d)\n",
      f.model, f.version.empty() ? "" : " version " + f.version, f.batch_size,
      open_loop ? absl::StrCat("open loop, ", f.distribution, " schedule")
                : absl::StrCat("closed loop, ", f.async ? "async" : "sync", " clients"),
      f.measurement_interval_ms, f.stability_pct, f.max_trials);

  std::vector<Level> results;
  for (double value : *levels) {
    std::cerr << what << " " << value << ":\n";
    Recorder recorder;
    Load load(client->get(), &*request, &recorder);
    if (open_loop)
      load.StartOpen(value, f.distribution == "poisson", f.seed);
    else
      load.StartClosed(static_cast<int>(value), f.async);
    absl::StatusOr<Level> level = Measure(**client, f, recorder, value);
    load.Stop();
    if (!level.ok()) {
      std::cerr << "error: " << absl::StatusCodeToString(level.status().code()) << ": "
                << level.status().message() << "\n";
      return 1;
    }
    results.push_back(*std::move(level));
  }
  PrintTable(results, f, what);
  if (!f.csv.empty()) {
    std::ofstream csv(f.csv);
    csv << what << "," << kCsvColumns << "\n";
    for (const Level& l : results) csv << CsvRow(l, f.batch_size) << "\n";
    csv.close();
    if (!csv) {
      std::cerr << "error: PERMISSION_DENIED: cannot write " << f.csv << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace gradserve::client

int main(int argc, char** argv) {
  gradserve::client::Flags f;
  po::options_description desc(
      "usage: gradserve-perf -m MODEL [--concurrency-range S:E:STEP | --request-rate-range "
      "S:E:STEP] [flags]\n\nFlags");
  // clang-format off
  desc.add_options()
      ("help,h", "show this help")
      ("url,u", po::value(&f.url)->default_value(f.url)->value_name("HOST:PORT"),
       "the server's gRPC endpoint")
      ("model,m", po::value(&f.model)->value_name("MODEL"), "the model to load (required)")
      ("model-version,x", po::value(&f.version)->value_name("V"),
       "its version (default: the version policy's)")
      ("batch-size,b", po::value(&f.batch_size)->default_value(f.batch_size), "rows per request")
      ("concurrency-range", po::value(&f.concurrency_range)->value_name("S:E:STEP"),
       "closed loop: levels of concurrent clients, each with one request outstanding "
       "(inclusive range, or a list 1,8,64; default 1)")
      ("request-rate-range", po::value(&f.request_rate_range)->value_name("S:E:STEP"),
       "open loop instead: levels of requests per second started on a schedule")
      ("request-distribution", po::value(&f.distribution)->default_value(f.distribution),
       "open loop schedule: constant or poisson")
      ("async,a", po::bool_switch(&f.async), "closed loop: gRPC callbacks instead of a thread "
       "per client")
      ("measurement-interval-ms,p", po::value(&f.measurement_interval_ms)
           ->default_value(f.measurement_interval_ms), "length of a measurement window")
      ("stability-percentage,s", po::value(&f.stability_pct)->default_value(f.stability_pct),
       "3 consecutive windows must agree within this % on throughput and p99")
      ("max-trials,r", po::value(&f.max_trials)->default_value(f.max_trials),
       "windows per level at most")
      ("shape", po::value(&f.shapes)->composing()->value_name("NAME:d1,d2"),
       "repeatable: an input's dimensions without the batch one (needed for -1 dimensions)")
      ("csv,f", po::value(&f.csv)->value_name("FILE"), "write one row per level to FILE")
      ("grpc-compression", po::value(&f.compression)->default_value(f.compression),
       "request compression: none, gzip or deflate")
      ("seed", po::value(&f.seed)->default_value(f.seed), "seed of the inputs and the schedule")
      ("timeout-ms", po::value(&f.timeout_ms)->default_value(0), "deadline per request; 0: none");
  // clang-format on
  po::variables_map vm;
  std::string error;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    error = e.what();
  }
  if (error.empty() && vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (error.empty() && f.model.empty()) error = "--model is required";
  if (error.empty() && !f.concurrency_range.empty() && !f.request_rate_range.empty()) {
    error = "give --concurrency-range or --request-rate-range, not both";
  }
  if (error.empty() && f.distribution != "constant" && f.distribution != "poisson") {
    error = "--request-distribution must be constant or poisson";
  }
  if (error.empty() && (f.batch_size < 1 || f.measurement_interval_ms < 1 || f.max_trials < 1 ||
                        f.stability_pct <= 0 || f.timeout_ms < 0)) {
    error =
        "--batch-size, --measurement-interval-ms, --max-trials and --stability-percentage "
        "must be positive";
  }
  if (!error.empty()) {
    std::cerr << "gradserve-perf: " << error << "\n\n" << desc << "\n";
    return 2;
  }
  return gradserve::client::Run(f);
}
