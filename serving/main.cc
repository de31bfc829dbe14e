// gradserve: the inference server. `gradserve --help` documents every flag;
// the names follow Triton's where it has one.
//
// Start-up: load the repository's models in the background, serve gRPC (and
// health) at once, report ready when the initial load finished. SIGTERM or
// SIGINT: report not ready, stop taking calls, let in-flight requests finish
// (up to --exit-timeout-secs), unload everything, exit 0.
#include <pthread.h>
#include <signal.h>

#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "graph/status.h"
#include "absl/time/clock.h"
#include "boost/program_options.hpp"
#include "serving/grpc_server.h"
#include "serving/http_server.h"  // [rest]
#include "serving/inference_service.h"
#include "serving/metrics.h"  // [metrics]
#include "serving/model_manager.h"

namespace po = boost::program_options;

namespace gradserve::serving {
namespace {

struct Flags {
  std::string model_repository;
  int grpc_port = 8001;
  int http_port = 8000;
  int metrics_port = 8002;
  std::string model_control_mode = "none";
  int repository_poll_secs = 15;
  std::vector<std::string> load_model;
  int exit_timeout_secs = 30;
  int log_verbose = 0;
  int intra_op_threads = 0;
  int inter_op_threads = 0;
  std::string address = "0.0.0.0";
  std::string checkpoint_dir;
  std::string device = "auto";
  std::string gpu_matmul_precision = "float32";
};

// --device: the GPU that models without an instance_group kind (KIND_AUTO)
// run on, or nullopt for the CPU. "auto": cuda:0 when there is a GPU; "cpu";
// "cuda:N" (or "gpu:N"): that GPU, which must exist.
absl::StatusOr<std::optional<GpuOptions>> ServerDevice(const Flags& flags) {
  GS_ASSIGN_OR_RETURN(MatMulPrecision precision,
                      ParseMatMulPrecision(flags.gpu_matmul_precision));
  GpuOptions gpu{.matmul_precision = precision};
  if (flags.device == "cpu") return std::nullopt;
  if (flags.device == "auto") {
    if (GpuCount() == 0) return std::nullopt;
    return gpu;
  }
  absl::string_view d = flags.device;
  if (!absl::ConsumePrefix(&d, "cuda:") && !absl::ConsumePrefix(&d, "gpu:")) {
    return absl::InvalidArgumentError(absl::StrCat("--device=", flags.device,
                                                   ": expected auto, cpu or cuda:N"));
  }
  if (!absl::SimpleAtoi(d, &gpu.ordinal) || gpu.ordinal < 0) {
    return absl::InvalidArgumentError(absl::StrCat("--device=", flags.device,
                                                   ": the GPU number must be an integer >= 0"));
  }
  if (gpu.ordinal >= GpuCount()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--device=", flags.device, ": no such GPU (",
                     GpuCount() == 0 ? GpuUnavailableReason()
                                     : absl::StrCat("this machine has ", GpuCount()),
                     ")"));
  }
  return gpu;
}

void Log(absl::string_view message) {
  std::cerr << absl::FormatTime("%Y-%m-%d %H:%M:%E3S", absl::Now(), absl::LocalTimeZone())
            << " gradserve: " << message << std::endl;
}

int Serve(const Flags& flags) {
  absl::StatusOr<ControlMode> mode = ParseControlMode(flags.model_control_mode);
  if (!mode.ok()) {
    Log(mode.status().message());
    return 2;
  }
  // Signals go to the main thread's sigwait only: block them before any thread starts.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::optional<GpuOptions>> device = ServerDevice(flags);
  if (!device.ok()) {
    Log(device.status().message());
    return 2;
  }
  Log(device->has_value() ? absl::StrCat("models run on cuda:", (*device)->ordinal,
                                         " unless their instance_group says KIND_CPU")
                          : absl::StrCat("models run on the CPU unless their instance_group "
                                         "says KIND_GPU",
                                         GpuCount() == 0
                                             ? absl::StrCat(" (no GPU: ", GpuUnavailableReason(), ")")
                                             : ""));

  ModelManagerOptions options;
  options.repository = flags.model_repository;
  options.session.gpu = *device;
  options.mode = *mode;
  options.poll_interval = absl::Seconds(flags.repository_poll_secs);
  options.startup_models = flags.load_model;
  options.session.intra_op_threads = flags.intra_op_threads;
  options.session.inter_op_threads = flags.inter_op_threads;
  options.on_load = [](const std::string& model, int64_t version, double seconds, bool ok) {
    Log(absl::StrCat(ok ? "loaded" : "failed to load", " model '", model, "' version ", version,
                     " in ", absl::FormatDuration(absl::Seconds(seconds))));
  };
  options.on_state = [&flags](const std::string& model, int64_t version, VersionState state) {
    if (flags.log_verbose > 0) {
      Log(absl::StrCat("model '", model, "' version ", version, " is ", VersionStateName(state)));
    }
  };
  options.training.checkpoint_root = flags.checkpoint_dir;
  options.training.observer.log = [](const std::string& line) { Log(line); };
  // [metrics] The registry outlives the manager and the service that feed it.
  absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Create();
  if (!metrics.ok()) {
    Log(metrics.status().message());
    return 1;
  }
  (*metrics)->InstallHooks(&options);
  // [/metrics]
  absl::StatusOr<std::unique_ptr<ModelManager>> manager = ModelManager::Create(options);
  if (!manager.ok()) {
    Log(manager.status().message());
    return 1;
  }
  InferenceService service(manager->get(), (*metrics)->RejectHook());  // [metrics] hook
  TrainingService training(manager->get(), (*metrics)->TrainRejectHook());
  absl::StatusOr<std::unique_ptr<GrpcServer>> grpc =
      GrpcServer::Start(absl::StrCat(flags.address, ":", flags.grpc_port), &service, &training);
  if (!grpc.ok()) {
    Log(grpc.status().message());
    return 1;
  }
  Log(absl::StrCat("serving gRPC on ", flags.address, ":", (*grpc)->port(), ", repository ",
                   flags.model_repository));
  // [rest] The REST API (/v2/...) over the same service; --http-port=0 picks a free port.
  absl::StatusOr<std::unique_ptr<HttpServer>> http =
      HttpServer::Start(flags.address, flags.http_port, &service, &training);
  if (!http.ok()) {
    Log(http.status().message());
    return 1;
  }
  Log(absl::StrCat("serving HTTP on ", flags.address, ":", (*http)->port()));
  // [/rest]
  // [metrics] /metrics; declared after the manager it samples, so destroyed before it.
  absl::StatusOr<std::unique_ptr<MetricsExposer>> metrics_exposer = MetricsExposer::Start(
      flags.address, flags.metrics_port, **metrics, QueueSourceFor(manager->get()));
  if (!metrics_exposer.ok()) {
    Log(metrics_exposer.status().message());
    return 1;
  }
  Log(absl::StrCat("serving metrics on ", flags.address, ":", (*metrics_exposer)->port()));
  // [/metrics]
  (*manager)->Start();
  std::thread ready_reporter([&] {
    (*manager)->WaitForInitialLoad();
    (*grpc)->SetServing(service.Ready());
    for (const ModelIndexEntry& e : (*manager)->Index(false)) {
      Log(absl::StrCat("model '", e.name, "' version ", e.version, ": ", VersionStateName(e.state),
                       e.reason.empty() ? "" : " (", e.reason, e.reason.empty() ? "" : ")"));
    }
    Log("ready");
  });

  int signal = 0;
  sigwait(&signals, &signal);
  Log(absl::StrCat("received ", signal == SIGTERM ? "SIGTERM" : "SIGINT",
                   "; finishing in-flight requests"));
  training.BeginShutdown();
  service.BeginShutdown();
  ready_reporter.join();
  (*grpc)->SetServing(false);
  (*http)->Shutdown(absl::Now() + absl::Seconds(flags.exit_timeout_secs));  // [rest]
  (*grpc)->Shutdown(absl::Now() + absl::Seconds(flags.exit_timeout_secs));
  (*manager)->Shutdown();
  Log("stopped");
  return 0;
}

}  // namespace
}  // namespace gradserve::serving

int main(int argc, char** argv) {
  gradserve::serving::Flags f;
  po::options_description desc("usage: gradserve --model-repository=DIR [flags]\n\nFlags");
  desc.add_options()
      ("help,h", "show this help")
      ("model-repository", po::value(&f.model_repository)->value_name("DIR"),
       "the model repository: DIR/<model>/[config.pbtxt] and DIR/<model>/<version>/ saved models")
      ("grpc-port", po::value(&f.grpc_port)->default_value(f.grpc_port),
       "port of the gRPC API (Open Inference Protocol v2); 0 picks a free port")
      ("http-port", po::value(&f.http_port)->default_value(f.http_port),
       "port of the REST API (/v2/...); 0 picks a free port")
      ("metrics-port", po::value(&f.metrics_port)->default_value(f.metrics_port),
       "port of the Prometheus metrics (/metrics); 0 picks a free port")
      ("address", po::value(&f.address)->default_value(f.address),
       "address the ports bind to (127.0.0.1 for loopback only)")
      ("model-control-mode", po::value(&f.model_control_mode)->default_value(f.model_control_mode),
       "none: load every model at start; poll: also rescan the repository every "
       "--repository-poll-secs; explicit: load only --load-model models, then what "
       "RepositoryModelLoad asks for")
      ("repository-poll-secs", po::value(&f.repository_poll_secs)->default_value(f.repository_poll_secs),
       "seconds between repository scans in poll mode")
      ("load-model", po::value(&f.load_model)->composing()->value_name("MODEL"),
       "repeatable; explicit mode: a model to load at start")
      ("exit-timeout-secs", po::value(&f.exit_timeout_secs)->default_value(f.exit_timeout_secs),
       "on SIGTERM/SIGINT, seconds to wait for in-flight requests")
      ("log-verbose", po::value(&f.log_verbose)->default_value(f.log_verbose),
       "0: load results and lifecycle; 1: also every version state change")
      ("checkpoint-dir", po::value(&f.checkpoint_dir)->value_name("DIR"),
       "where trainable models keep their checkpoints: DIR/<model>/<version>/ (default: "
       "<model-repository>/<model>/<version>/checkpoints)")
      ("device", po::value(&f.device)->default_value(f.device),
       "where models without an instance_group kind run: auto (the first GPU when there is "
       "one, else the CPU), cpu, or cuda:N; instance_group KIND_CPU / KIND_GPU in a model's "
       "config.pbtxt takes precedence")
      ("gpu-matmul-precision", po::value(&f.gpu_matmul_precision)->default_value(f.gpu_matmul_precision),
       "float32 matrix products on a GPU: float32 (IEEE), tf32, bfloat16 or float16 (operands "
       "rounded, float32 accumulation)")
      ("intra-op-threads", po::value(&f.intra_op_threads)->default_value(0),
       "threads one op may use (0 = all cores)")
      ("inter-op-threads", po::value(&f.inter_op_threads)->default_value(0),
       "independent ops run at once within a request (0 = all cores)");
  po::variables_map vm;
  try {
    po::store(po::parse_command_line(argc, argv, desc), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    std::cerr << "gradserve: " << e.what() << "\n\n" << desc << "\n";
    return 2;
  }
  if (vm.count("help")) {
    std::cout << desc << "\n";
    return 0;
  }
  if (f.model_repository.empty()) {
    std::cerr << "gradserve: --model-repository is required\n\n" << desc << "\n";
    return 2;
  }
  return gradserve::serving::Serve(f);
}
