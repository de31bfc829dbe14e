// Helpers for the benchmarks that serve models in their own process
// (train_serving_bench, gpu_serving_bench): a gRPC server on a free loopback
// port, client channels of their own, batch-1 requests and the latency summary
// of a run. A benchmark has no caller to hand an error to: a failure prints
// "<program>: <what>: <message>" on stderr and exits with status 1.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.pb.h"
#include "serving/grpc_server.h"
#include "serving/inference_service.h"
#include "serving/model_manager.h"
#include "serving/training_service.h"

namespace gradserve::bench {

// Exits with status 1 unless `s` is OK, saying "`program`: `what`: <message>".
inline void ExitUnlessOk(const char* program, const absl::Status& s, const char* what) {
  if (!s.ok()) {
    std::fprintf(stderr, "%s: %s: %s\n", program, what, std::string(s.message()).c_str());
    std::exit(1);
  }
}

// A ModelManager over a repository (started, its initial load done), an
// InferenceService and, when asked, a TrainingService over it, served by a
// GrpcServer on a free loopback port; the constructor exits on failure
// (ExitUnlessOk). The destructor shuts gRPC down (5 s grace), then the manager.
struct InProcessServer {
  struct Options {
    const char* program = "";        // names the benchmark in error messages
    std::string repository;          // ModelManagerOptions::repository
    bool training = false;           // also serve gradserve.v1.TrainingService
    bool lock_whole_step = false;    // ModelManagerOptions::training.lock_whole_step
    bool require_all_ready = false;  // exit unless every version loaded
  };

  explicit InProcessServer(const Options& o) {
    serving::ModelManagerOptions options;
    options.repository = o.repository;
    options.training.lock_whole_step = o.lock_whole_step;
    auto m = serving::ModelManager::Create(options);
    ExitUnlessOk(o.program, m.status(), "ModelManager::Create");
    manager = *std::move(m);
    manager->Start();
    manager->WaitForInitialLoad();
    for (const serving::ModelIndexEntry& e : manager->Index(/*ready_only=*/false)) {
      if (o.require_all_ready && e.state != serving::VersionState::kReady) {
        ExitUnlessOk(o.program,
                     absl::FailedPreconditionError(
                         absl::StrCat(e.name, " version ", e.version, " is ",
                                      serving::VersionStateName(e.state), ": ", e.reason)),
                     "loading the models");
      }
    }
    inference = std::make_unique<serving::InferenceService>(manager.get());
    if (o.training) training = std::make_unique<serving::TrainingService>(manager.get());
    auto g = serving::GrpcServer::Start("127.0.0.1:0", inference.get(), training.get());
    ExitUnlessOk(o.program, g.status(), "GrpcServer::Start");
    grpc = *std::move(g);
    address = absl::StrCat("127.0.0.1:", grpc->port());
  }
  ~InProcessServer() {
    grpc->Shutdown(absl::Now() + absl::Seconds(5));
    manager->Shutdown();
  }

  std::unique_ptr<serving::ModelManager> manager;
  std::unique_ptr<serving::InferenceService> inference;
  std::unique_ptr<serving::TrainingService> training;  // null unless Options::training
  std::unique_ptr<serving::GrpcServer> grpc;
  std::string address;  // "127.0.0.1:PORT"
};

// A channel to `address` on a connection of its own: gRPC shares one
// connection among channels of equal arguments, so each client `id` differs.
// max_send_message_bytes: 0 keeps gRPC's default.
inline std::shared_ptr<grpc::Channel> ClientChannel(const std::string& address, int id,
                                                    int max_send_message_bytes = 0) {
  grpc::ChannelArguments args;
  args.SetInt("gradserve.client", id);
  if (max_send_message_bytes > 0) args.SetMaxSendMessageSize(max_send_message_bytes);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// A batch-1 ModelInfer request to `model`: input "pixels", FP32 [1, width],
// the `width` floats at `pixels` as raw contents.
inline inference::ModelInferRequest PixelsRequest(const std::string& model, const float* pixels,
                                                  int64_t width) {
  inference::ModelInferRequest request;
  request.set_model_name(model);
  auto* in = request.add_inputs();
  in->set_name("pixels");
  in->set_datatype("FP32");
  in->add_shape(1);
  in->add_shape(width);
  request.add_raw_input_contents(
      std::string(reinterpret_cast<const char*>(pixels), width * sizeof(float)));
  return request;
}

// Latency percentiles and throughput of a run of calls.
struct LatencySummary {
  double p50_us = 0, p99_us = 0, per_second = 0;
};

// The summary of every call's latency (one list per client, in microseconds)
// over `elapsed_seconds`; zeros when there was no call.
inline LatencySummary Summarize(const std::vector<std::vector<double>>& latencies_us,
                                double elapsed_seconds) {
  std::vector<double> all;
  for (const auto& l : latencies_us) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  LatencySummary out;
  if (all.empty()) return out;
  out.p50_us = all[all.size() / 2];
  out.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  out.per_second = all.size() / elapsed_seconds;
  return out;
}

}  // namespace gradserve::bench
