// Online training through the server, measured against its in-process peer:
//
//   1. Train throughput: examples/s of ModelTrain calls over loopback gRPC
//      (1 and 2 clients, each sending batch_size examples per call) against
//      Trainer::Step in this process on the same model and batch size
//      (goal: >= 80% of in-process).
//   2. Predict latency at concurrency 16 (batch-1 ModelInfer calls) alone,
//      and beside one client training at full speed, once with the server's
//      Note [Weights generations] (only the update excludes inference) and once
//      with the whole step exclusive (goal: p99 with training <= 2x without).
//
// Everything runs in this one process on the same cores (server, clients and
// the in-process peer), on random data. Prints a table; asserts nothing.
//
//   build/bench/train_serving_bench [--models-dir configs/models] [--seconds 4]
//       [--models digits_mlp,fashion_mlp]
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/serving_bench_util.h"
#include "google/protobuf/text_format.h"
#include "graph/file_io.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_service.grpc.pb.h"
#include "proto/training.grpc.pb.h"
#include "runtime/trainer.h"
#include "serving/online_trainer.h"

namespace gradserve::serving {
namespace {

namespace fs = std::filesystem;

using bench::InProcessServer;
using bench::LatencySummary;

constexpr char kProgram[] = "train_serving_bench";

struct Options {
  std::string models_dir = "configs/models";
  std::vector<std::string> models = {"digits_mlp", "fashion_mlp"};
  double seconds = 4;
  int predict_clients = 16;
};

void Check(const absl::Status& s, const char* what) { bench::ExitUnlessOk(kProgram, s, what); }

// The model's example config with training on: Adam, its max_batch_size as
// batch_size, no cadence checkpoints (they are not what is measured).
inference::ModelConfig BenchConfig(const Options& o, const std::string& model) {
  absl::StatusOr<std::string> text =
      ReadFileToString(absl::StrCat(o.models_dir, "/", model, "/config.pbtxt"));
  Check(text.status(), "reading config.pbtxt");
  inference::ModelConfig config;
  google::protobuf::TextFormat::ParseFromString(*text, &config);
  inference::ModelTrainingConfig& t = *config.mutable_training();
  t.set_enabled(true);
  t.set_batch_size(config.max_batch_size());
  t.set_checkpoint_every_steps(0);
  t.set_checkpoint_every_seconds(0);
  t.set_max_queue_delay_microseconds(1000);
  return config;
}

// A temporary repository holding `model` version 1 with `config`.
std::string MakeRepository(const Options& o, const std::string& model,
                           const inference::ModelConfig& config) {
  const std::string repo =
      absl::StrCat(fs::temp_directory_path().string(), "/gradserve-train-bench-", ::getpid());
  fs::remove_all(repo);
  fs::create_directories(repo + "/" + model);
  fs::copy(absl::StrCat(o.models_dir, "/", model, "/1"), absl::StrCat(repo, "/", model, "/1"),
           fs::copy_options::recursive);
  std::string text;
  google::protobuf::TextFormat::PrintToString(config, &text);
  Check(WriteFileAtomically(absl::StrCat(repo, "/", model, "/config.pbtxt"), text),
        "writing config.pbtxt");
  return repo;
}

struct Data {
  std::vector<float> features;  // rows x width
  std::vector<int64_t> labels;
  int64_t rows = 0, width = 0;
};

Data RandomData(int64_t rows, int64_t width) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(0.f, 1.f);
  Data d{std::vector<float>(rows * width), std::vector<int64_t>(rows), rows, width};
  for (float& v : d.features) v = u(rng);
  for (int64_t& l : d.labels) l = static_cast<int64_t>(rng() % 10);
  return d;
}

// The in-process peer: Trainer::Step examples/s.
double InProcessExamplesPerSecond(const std::string& dir, const inference::ModelConfig& config,
                                  const Data& d, double seconds) {
  auto trainer = Trainer::Load(dir, OptimizerConfigFor(config.training()));
  Check(trainer.status(), "Trainer::Load");
  Tensor x(DType::kFloat, Shape{d.rows, d.width});
  std::copy(d.features.begin(), d.features.end(), x.data<float>());
  Tensor y(DType::kInt64, Shape{d.rows});
  std::copy(d.labels.begin(), d.labels.end(), y.data<int64_t>());
  for (int i = 0; i < 10; ++i) Check((*trainer)->Step(x, y).status(), "warm-up step");
  int64_t steps = 0;
  const absl::Time start = absl::Now();
  while (absl::Now() - start < absl::Seconds(seconds)) {
    Check((*trainer)->Step(x, y).status(), "step");
    ++steps;
  }
  return steps * d.rows / absl::ToDoubleSeconds(absl::Now() - start);
}

std::shared_ptr<grpc::Channel> Channel(const std::string& address, int id) {
  return bench::ClientChannel(address, id, /*max_send_message_bytes=*/64 << 20);
}

v1::ModelTrainRequest TrainRequest(const std::string& model, const Data& d) {
  v1::ModelTrainRequest r;
  r.set_model_name(model);
  auto* px = r.add_inputs();
  px->set_name("pixels");
  px->set_datatype("FP32");
  px->add_shape(d.rows);
  px->add_shape(d.width);
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(d.features.data()),
                                       d.features.size() * sizeof(float)));
  auto* lb = r.add_inputs();
  lb->set_name("labels");
  lb->set_datatype("INT64");
  lb->add_shape(d.rows);
  r.add_raw_input_contents(std::string(reinterpret_cast<const char*>(d.labels.data()),
                                       d.labels.size() * sizeof(int64_t)));
  return r;
}

// Sends Train calls from `clients` threads until `stop`; returns examples/s.
double TrainStream(const std::string& address, const v1::ModelTrainRequest& request, int clients,
                   std::atomic<bool>* stop, double seconds) {
  std::atomic<int64_t> examples{0};
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = v1::TrainingService::NewStub(Channel(address, 100 + c));
      while (!stop->load() && (seconds <= 0 || absl::Now() - start < absl::Seconds(seconds))) {
        grpc::ClientContext ctx;
        v1::ModelTrainResponse response;
        grpc::Status s = stub->ModelTrain(&ctx, request, &response);
        if (!s.ok()) Check(absl::InternalError(s.error_message()), "ModelTrain");
        examples += request.inputs(0).shape(0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  return examples.load() / absl::ToDoubleSeconds(absl::Now() - start);
}

// `clients` threads of batch-1 ModelInfer calls for `seconds`; with
// `train` set, one client trains at full speed meanwhile.
LatencySummary PredictLatency(const std::string& address, const std::string& model, const Data& d,
                              int clients, double seconds, const v1::ModelTrainRequest* train) {
  const inference::ModelInferRequest request =
      bench::PixelsRequest(model, d.features.data(), d.width);
  std::atomic<bool> stop{false};
  std::thread trainer;
  if (train != nullptr) {
    trainer = std::thread([&] { TrainStream(address, *train, 1, &stop, 0); });
    absl::SleepFor(absl::Milliseconds(200));  // training at full speed first
  }
  std::vector<std::vector<double>> latencies(clients);
  std::vector<std::thread> threads;
  const absl::Time start = absl::Now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      auto stub = inference::GRPCInferenceService::NewStub(Channel(address, c));
      while (absl::Now() - start < absl::Seconds(seconds)) {
        grpc::ClientContext ctx;
        inference::ModelInferResponse response;
        const absl::Time t0 = absl::Now();
        grpc::Status s = stub->ModelInfer(&ctx, request, &response);
        if (!s.ok()) Check(absl::InternalError(s.error_message()), "ModelInfer");
        latencies[c].push_back(absl::ToDoubleMicroseconds(absl::Now() - t0));
      }
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = absl::ToDoubleSeconds(absl::Now() - start);
  stop = true;
  if (trainer.joinable()) trainer.join();
  return bench::Summarize(latencies, elapsed);
}

void Run(const Options& o) {
  std::printf("%-12s %5s | %12s %12s %6s %12s %6s\n", "model", "batch", "in-proc ex/s",
              "server 1 cl", "ratio", "server 2 cl", "ratio");
  struct Row {
    std::string model;
    LatencySummary alone, split, whole;
  };
  std::vector<Row> latency_rows;
  for (const std::string& model : o.models) {
    const inference::ModelConfig config = BenchConfig(o, model);
    const std::string repo = MakeRepository(o, model, config);
    const int64_t width = model.rfind("digits", 0) == 0 ? 64 : 784;
    const Data d = RandomData(config.training().batch_size(), width);
    const double in_process = InProcessExamplesPerSecond(absl::StrCat(repo, "/", model, "/1"),
                                                         config, d, o.seconds);
    const v1::ModelTrainRequest request = TrainRequest(model, d);
    Row row{model, {}, {}, {}};
    double server1 = 0, server2 = 0;
    {
      InProcessServer server({.program = kProgram, .repository = repo, .training = true});
      std::atomic<bool> stop{false};
      TrainStream(server.address, request, 1, &stop, 0.5);  // warm-up
      server1 = TrainStream(server.address, request, 1, &stop, o.seconds);
      server2 = TrainStream(server.address, request, 2, &stop, o.seconds);
      row.alone = PredictLatency(server.address, model, d, o.predict_clients, o.seconds, nullptr);
      row.split = PredictLatency(server.address, model, d, o.predict_clients, o.seconds, &request);
    }
    {
      InProcessServer server(
          {.program = kProgram, .repository = repo, .training = true, .lock_whole_step = true});
      row.whole = PredictLatency(server.address, model, d, o.predict_clients, o.seconds, &request);
    }
    std::printf("%-12s %5lld | %12.0f %12.0f %6.2f %12.0f %6.2f\n", model.c_str(),
                static_cast<long long>(d.rows), in_process, server1, server1 / in_process,
                server2, server2 / in_process);
    latency_rows.push_back(row);
    fs::remove_all(repo);
  }
  std::printf("\npredict at concurrency %d (batch 1), p50 / p99 in us, predictions/s:\n",
              o.predict_clients);
  std::printf("%-12s | %-24s | %-24s %7s | %-24s %7s\n", "model", "alone",
              "+training (update lock)", "p99 x", "+training (step lock)", "p99 x");
  for (const Row& r : latency_rows) {
    auto cell = [](const LatencySummary& l) {
      return absl::StrCat(static_cast<int>(l.p50_us), " / ", static_cast<int>(l.p99_us), " / ",
                          static_cast<int>(l.per_second));
    };
    std::printf("%-12s | %-24s | %-24s %7.2f | %-24s %7.2f\n", r.model.c_str(),
                cell(r.alone).c_str(), cell(r.split).c_str(), r.split.p99_us / r.alone.p99_us,
                cell(r.whole).c_str(), r.whole.p99_us / r.alone.p99_us);
  }
}

}  // namespace
}  // namespace gradserve::serving

int main(int argc, char** argv) {
  gradserve::serving::Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--models-dir") {
      o.models_dir = value;
    } else if (flag == "--seconds") {
      o.seconds = std::stod(value);
    } else if (flag == "--models") {
      o.models = absl::StrSplit(value, ',');
    } else {
      std::fprintf(stderr, "usage: train_serving_bench [--models-dir D] [--seconds S] "
                           "[--models a,b]\n");
      return 2;
    }
  }
  gradserve::serving::Run(o);
  return 0;
}
