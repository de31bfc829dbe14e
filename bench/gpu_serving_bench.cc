// Serving on the GPU against the CPU, end to end (issue 6; run on a GPU by
// scripts/gpu_check.sh):
//
//   An in-process server (ModelManager + GrpcServer on a loopback port) holds
//   fashion_mlp (784-512-512-10) twice: "fashion_cpu" (instance_group
//   KIND_CPU) and "fashion_gpu" (KIND_GPU, gpus [0]), both with
//   max_batch_size 128 and dynamic batching (max_queue_delay 500 us). 128
//   concurrent gRPC clients (a connection each) send batch-1 ModelInfer
//   requests of random pixels to one model, then the other, for --seconds
//   each (after a one-second warm-up). Reported per model: requests/s, p50
//   and p99 latency, the mean batch the batcher formed; then the GPU/CPU
//   throughput ratio (goal >= 20x).
//
// Server and clients share this process and its cores. Prints a table;
// asserts nothing. Without a GPU it says why and exits 0.
//
//   build-gpu/bench/gpu_serving_bench [--seconds 5] [--clients 128]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "graph/example_models.h"
#include "graph/file_io.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.grpc.pb.h"
#include "runtime/device.h"
#include "serving/grpc_server.h"
#include "serving/inference_service.h"
#include "serving/model_manager.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kWidth = 784;

struct Options {
  double seconds = 5;
  int clients = 128;
};

void Check(const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "gpu_serving_bench: %s: %s\n", what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

// config.pbtxt of one copy of fashion_mlp with instance group `group`.
std::string Config(const std::string& name, const std::string& group) {
  return absl::StrCat("name: \"", name, "\"\n", "platform: \"gradserve_savedmodel\"\n",
                      "max_batch_size: 128\n",
                      "dynamic_batching { max_queue_delay_microseconds: 500 }\n",
                      "instance_group [{ ", group, " }]\n");
}

// A temporary repository: fashion_cpu and fashion_gpu, each version 1 of
// WriteExampleModels' fashion_mlp. Returns its path.
std::string MakeRepository() {
  const std::string base = absl::StrCat(fs::temp_directory_path().string(),
                                        "/gradserve-gpu-serving-bench-", ::getpid());
  const std::string examples = base + "-examples", repo = base;
  fs::remove_all(examples);
  fs::remove_all(repo);
  Check(WriteExampleModels(examples), "WriteExampleModels");
  const std::pair<const char*, const char*> models[] = {
      {"fashion_cpu", "kind: KIND_CPU"}, {"fashion_gpu", "kind: KIND_GPU, gpus: [0]"}};
  for (const auto& [name, group] : models) {
    fs::create_directories(absl::StrCat(repo, "/", name));
    fs::copy(examples + "/fashion_mlp/1", absl::StrCat(repo, "/", name, "/1"),
             fs::copy_options::recursive);
    Check(WriteFileAtomically(absl::StrCat(repo, "/", name, "/config.pbtxt"),
                              Config(name, group)),
          "writing config.pbtxt");
  }
  fs::remove_all(examples);
  return repo;
}

// A server in this process on a free loopback port.
struct Server {
  std::unique_ptr<ModelManager> manager;
  std::unique_ptr<InferenceService> inference;
  std::unique_ptr<GrpcServer> grpc;
  std::string address;

  explicit Server(const std::string& repo) {
    ModelManagerOptions options;
    options.repository = repo;
    auto m = ModelManager::Create(options);
    Check(m.status(), "ModelManager::Create");
    manager = *std::move(m);
    manager->Start();
    manager->WaitForInitialLoad();
    for (const ModelIndexEntry& e : manager->Index(/*ready_only=*/false)) {
      if (e.state != VersionState::kReady) {
        Check(absl::FailedPreconditionError(
                  absl::StrCat(e.name, " version ", e.version, " is ",
                               VersionStateName(e.state), ": ", e.reason)),
              "loading the models");
      }
    }
    inference = std::make_unique<InferenceService>(manager.get());
    auto g = GrpcServer::Start("127.0.0.1:0", inference.get());
    Check(g.status(), "GrpcServer::Start");
    grpc = *std::move(g);
    address = absl::StrCat("127.0.0.1:", grpc->port());
  }
  ~Server() {
    grpc->Shutdown(absl::Now() + absl::Seconds(5));
    manager->Shutdown();
  }

  // inference_count / execution_count of `model` so far.
  std::pair<uint64_t, uint64_t> Counts(const std::string& model) const {
    auto stats = inference->ModelStatistics(model, "");
    Check(stats.status(), "ModelStatistics");
    uint64_t inferences = 0, executions = 0;
    for (const auto& s : stats->model_stats()) {
      inferences += s.inference_count();
      executions += s.execution_count();
    }
    return {inferences, executions};
  }
};

// A batch-1 request of random pixels in [0, 1).
inference::ModelInferRequest Request(const std::string& model, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> pixels(kWidth);
  for (float& p : pixels) p = u(rng);
  inference::ModelInferRequest request;
  request.set_model_name(model);
  auto* in = request.add_inputs();
  in->set_name("pixels");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(kWidth);
  request.add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(pixels.data()), pixels.size() * sizeof(float)));
  return request;
}

struct Result {
  double per_second = 0, p50_us = 0, p99_us = 0, mean_batch = 0;
};

// Every stub sends ModelInfer calls to `model` in a loop for `seconds`.
Result Load(const Server& server,
            const std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>>& stubs,
            const std::string& model, double seconds) {
  const int clients = static_cast<int>(stubs.size());
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> threads;
  const auto [inferences0, executions0] = server.Counts(model);
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      const inference::ModelInferRequest request = Request(model, 1000 + c);
      while (absl::Now() - start < absl::Seconds(seconds)) {
        grpc::ClientContext ctx;
        ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
        inference::ModelInferResponse response;
        const absl::Time t0 = absl::Now();
        grpc::Status s = stubs[c]->ModelInfer(&ctx, request, &response);
        if (!s.ok()) {
          Check(absl::InternalError(s.error_message()), absl::StrCat("ModelInfer ", model).c_str());
        }
        latencies[c].push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  const auto [inferences1, executions1] = server.Counts(model);
  std::vector<double> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  Result r;
  if (all.empty()) return r;
  r.per_second = all.size() / elapsed;
  r.p50_us = all[all.size() / 2];
  r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  const uint64_t executions = executions1 - executions0;
  r.mean_batch =
      executions > 0 ? static_cast<double>(inferences1 - inferences0) / executions : 0;
  return r;
}

void Run(const Options& o) {
  const std::string repo = MakeRepository();
  {
    Server server(repo);
    std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
    for (int c = 0; c < o.clients; ++c) {
      grpc::ChannelArguments args;
      args.SetInt("gradserve.client", c);  // a connection per client
      stubs.push_back(inference::GRPCInferenceService::NewStub(
          grpc::CreateCustomChannel(server.address, grpc::InsecureChannelCredentials(), args)));
    }
    std::printf("%d clients, batch-1 ModelInfer over loopback gRPC, %.1f s per model\n",
                o.clients, o.seconds);
    std::printf("%-12s %12s %10s %10s %10s\n", "model", "requests/s", "p50 us", "p99 us",
                "mean batch");
    Result results[2];
    const char* models[2] = {"fashion_cpu", "fashion_gpu"};
    for (int i = 0; i < 2; ++i) {
      Load(server, stubs, models[i], 1.0);  // warm-up: connections, batch shapes
      results[i] = Load(server, stubs, models[i], o.seconds);
      const Result& r = results[i];
      std::printf("%-12s %12.0f %10.0f %10.0f %10.1f\n", models[i], r.per_second, r.p50_us,
                  r.p99_us, r.mean_batch);
    }
    std::printf("%-12s %12.2f   (goal >= 20)\n", "GPU/CPU",
                results[0].per_second > 0 ? results[1].per_second / results[0].per_second : 0);
  }
  fs::remove_all(repo);
}

}  // namespace
}  // namespace gradserve::serving

int main(int argc, char** argv) {
  gradserve::serving::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--seconds") {
      o.seconds = std::stod(value);
    } else if (flag == "--clients") {
      o.clients = std::max(1, std::stoi(value));
    } else {
      std::fprintf(stderr, "usage: gpu_serving_bench [--seconds S] [--clients N]\n");
      return 2;
    }
  }
  if (argc % 2 == 0) {
    std::fprintf(stderr, "usage: gpu_serving_bench [--seconds S] [--clients N]\n");
    return 2;
  }
  if (gradserve::GpuCount() == 0) {
    std::printf("gpu_serving_bench: %s; nothing measured\n",
                gradserve::GpuUnavailableReason().c_str());
    return 0;
  }
  gradserve::serving::Run(o);
  return 0;
}
