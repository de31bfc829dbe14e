// Serving on the GPU against the CPU, end to end (issue 6; run on a GPU by
// scripts/gpu_check.sh):
//
//   An in-process server (ModelManager + GrpcServer on a loopback port) holds
//   fashion_mlp (784-512-512-10) three times: "fashion_cpu" (instance_group
//   KIND_CPU), "fashion_gpu" (KIND_GPU, gpus [0]) and "fashion_graphs" (the
//   same with CUDA graphs: optimization.cuda.graphs for batch sizes 1, 2, 4,
//   ..., 128), all with max_batch_size 128 and dynamic batching
//   (max_queue_delay 500 us). 128 concurrent gRPC clients (a connection
//   each) send batch-1 ModelInfer requests of random pixels to one model,
//   then the next, for --seconds each (after a one-second warm-up). Reported
//   per model: requests/s, p50 and p99 latency, the mean batch the batcher
//   formed; then the GPU/CPU throughput ratio (goal >= 20x) and the
//   with/without CUDA graphs ratio.
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
#include "bench/serving_bench_util.h"
#include "graph/example_models.h"
#include "graph/file_io.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.grpc.pb.h"
#include "runtime/device.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

using bench::InProcessServer;

constexpr char kProgram[] = "gpu_serving_bench";
constexpr int64_t kWidth = 784;

struct Options {
  double seconds = 5;
  int clients = 128;
};

void Check(const absl::Status& s, const char* what) { bench::ExitUnlessOk(kProgram, s, what); }

// config.pbtxt of one copy of fashion_mlp with instance group `group` and
// the lines `extra`.
std::string Config(const std::string& name, const std::string& group, const std::string& extra) {
  return absl::StrCat("name: \"", name, "\"\n", "platform: \"gradserve_savedmodel\"\n",
                      "max_batch_size: 128\n",
                      "dynamic_batching { max_queue_delay_microseconds: 500 }\n",
                      "instance_group [{ ", group, " }]\n", extra);
}

constexpr char kGraphs[] =
    "optimization { cuda { graphs: true graph_spec [ { batch_size: 1 }, { batch_size: 2 }, "
    "{ batch_size: 4 }, { batch_size: 8 }, { batch_size: 16 }, { batch_size: 32 }, "
    "{ batch_size: 64 }, { batch_size: 128 } ] } }\n";

// A temporary repository: fashion_cpu, fashion_gpu and fashion_graphs, each
// version 1 of WriteExampleModels' fashion_mlp. Returns its path.
std::string MakeRepository() {
  const std::string base =
      absl::StrCat(fs::temp_directory_path().string(), "/gradserve-gpu-serving-bench-", ::getpid());
  const std::string examples = base + "-examples", repo = base;
  fs::remove_all(examples);
  fs::remove_all(repo);
  Check(WriteExampleModels(examples), "WriteExampleModels");
  const struct {
    const char *name, *group, *extra;
  } models[] = {{"fashion_cpu", "kind: KIND_CPU", ""},
                {"fashion_gpu", "kind: KIND_GPU, gpus: [0]", ""},
                {"fashion_graphs", "kind: KIND_GPU, gpus: [0]", kGraphs}};
  for (const auto& [name, group, extra] : models) {
    fs::create_directories(absl::StrCat(repo, "/", name));
    fs::copy(examples + "/fashion_mlp/1", absl::StrCat(repo, "/", name, "/1"),
             fs::copy_options::recursive);
    Check(WriteFileAtomically(absl::StrCat(repo, "/", name, "/config.pbtxt"),
                              Config(name, group, extra)),
          "writing config.pbtxt");
  }
  fs::remove_all(examples);
  return repo;
}

// inference_count / execution_count of `model` on `server` so far.
std::pair<uint64_t, uint64_t> Counts(const InProcessServer& server, const std::string& model) {
  auto stats = server.inference->ModelStatistics(model, "");
  Check(stats.status(), "ModelStatistics");
  uint64_t inferences = 0, executions = 0;
  for (const auto& s : stats->model_stats()) {
    inferences += s.inference_count();
    executions += s.execution_count();
  }
  return {inferences, executions};
}

// A batch-1 request of random pixels in [0, 1).
inference::ModelInferRequest Request(const std::string& model, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  std::vector<float> pixels(kWidth);
  for (float& p : pixels) p = u(rng);
  return bench::PixelsRequest(model, pixels.data(), kWidth);
}

struct Result {
  bench::LatencySummary latency;
  double mean_batch = 0;
};

// Every stub sends ModelInfer calls to `model` in a loop for `seconds`.
Result Load(const InProcessServer& server,
            const std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>>& stubs,
            const std::string& model, double seconds) {
  const int clients = static_cast<int>(stubs.size());
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> threads;
  const auto [inferences0, executions0] = Counts(server, model);
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
  const auto [inferences1, executions1] = Counts(server, model);
  Result r;
  r.latency = bench::Summarize(latencies, elapsed);
  if (r.latency.per_second == 0) return r;  // no call
  const uint64_t executions = executions1 - executions0;
  r.mean_batch = executions > 0 ? static_cast<double>(inferences1 - inferences0) / executions : 0;
  return r;
}

void Run(const Options& o) {
  const std::string repo = MakeRepository();
  {
    InProcessServer server({.program = kProgram, .repository = repo, .require_all_ready = true});
    std::vector<std::unique_ptr<inference::GRPCInferenceService::Stub>> stubs;
    for (int c = 0; c < o.clients; ++c) {
      stubs.push_back(
          inference::GRPCInferenceService::NewStub(bench::ClientChannel(server.address, c)));
    }
    std::printf("%d clients, batch-1 ModelInfer over loopback gRPC, %.1f s per model\n", o.clients,
                o.seconds);
    std::printf("%-12s %12s %10s %10s %10s\n", "model", "requests/s", "p50 us", "p99 us",
                "mean batch");
    Result results[3];
    const char* models[3] = {"fashion_cpu", "fashion_gpu", "fashion_graphs"};
    for (int i = 0; i < 3; ++i) {
      Load(server, stubs, models[i], 1.0);  // warm-up: connections, batch shapes
      results[i] = Load(server, stubs, models[i], o.seconds);
      const Result& r = results[i];
      std::printf("%-12s %12.0f %10.0f %10.0f %10.1f\n", models[i], r.latency.per_second,
                  r.latency.p50_us, r.latency.p99_us, r.mean_batch);
    }
    const double cpu = results[0].latency.per_second, gpu = results[1].latency.per_second,
                 graphs = results[2].latency.per_second;
    std::printf("%-12s %12.2f   (goal >= 20)\n", "GPU/CPU", cpu > 0 ? gpu / cpu : 0);
    std::printf("%-12s %12.2f   (best GPU: %s)\n", "best GPU/CPU",
                cpu > 0 ? std::max(gpu, graphs) / cpu : 0,
                graphs > gpu ? "with CUDA graphs" : "without");
    std::printf("%-12s %12.2f\n", "graphs/plain", gpu > 0 ? graphs / gpu : 0);
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
