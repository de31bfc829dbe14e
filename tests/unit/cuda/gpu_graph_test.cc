// Device graphs on the GPU (Note [Device graphs], runtime/executor.h): the
// serving signature of the example digits models, run through a GPU session
// as CUDA graphs, against the same session without graphs and against a CPU
// session, on fresh random inputs; across training steps (the variables the
// graph reads change in place); after the variables are assigned new buffers
// (the graph must be recaptured, not read freed memory); from several threads
// at several batch sizes; and without leaking device memory. Skips without a
// GPU.
#ifdef GRADSERVE_HAVE_CUDA

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <random>
#include <thread>

#include "graph/example_models.h"
#include "gtest/gtest.h"
#include "runtime/saved_model_loader.h"
#include "runtime/trainer.h"
#include "tests/unit/cuda/cuda_test_util.h"

namespace gradserve::testing {
namespace {

using Graph = RunMetadata::Graph;

class GpuGraphTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    SKIP_WITHOUT_GPU();
    dir_ = ::testing::TempDir() + "/gpu_graph_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(WriteExampleModels(dir_).ok());
    const std::string version = dir_ + "/" + GetParam() + "/1";
    auto gpu = Trainer::Load(version, OptimizerConfig{},
                             {.intra_op_threads = 1, .inter_op_threads = 1, .gpu = GpuOptions{}});
    ASSERT_TRUE(gpu.ok()) << gpu.status();
    gpu_ = std::move(*gpu);
    auto cpu = Trainer::Load(version, OptimizerConfig{}, {.intra_op_threads = 1});
    ASSERT_TRUE(cpu.ok()) << cpu.status();
    cpu_ = std::move(*cpu);
    signature_ = gpu_->bundle().FindSignature(kServingSignatureKey);
    ASSERT_NE(signature_, nullptr);
    input_ = signature_->inputs().begin()->first;
    const TensorInfo& info = signature_->inputs().begin()->second;
    for (const auto& d : info.tensor_shape().dim()) row_dims_.push_back(d.size());
    row_dims_.erase(row_dims_.begin());  // the batch dimension
  }
  void TearDown() override {
    gpu_.reset();
    cpu_.reset();
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
  }

  // `rows` examples of pixels in [0, 1) from `rng`.
  Tensor Pixels(int64_t rows, std::mt19937& rng) const {
    std::vector<int64_t> dims = {rows};
    dims.insert(dims.end(), row_dims_.begin(), row_dims_.end());
    Tensor t(DType::kFloat, Shape(dims));
    std::uniform_real_distribution<float> u(0.f, 1.f);
    for (float& v : t.span<float>()) v = u(rng);
    return t;
  }

  // The serving signature's outputs on `session`.
  std::map<std::string, Tensor> Serve(const Trainer& trainer, const Tensor& x,
                                      const RunOptions& options = {},
                                      RunMetadata* metadata = nullptr) const {
    auto out = RunSignatureDef(*trainer.bundle().session, *signature_, kServingSignatureKey,
                               {{input_, x}}, {}, {}, options, metadata);
    EXPECT_TRUE(out.ok()) << out.status();
    return out.ok() ? *std::move(out) : std::map<std::string, Tensor>{};
  }

  // Every output of `got` within `tolerance` (relative to max(1, |want|)) of `want`.
  static void ExpectNear(const std::map<std::string, Tensor>& got,
                         const std::map<std::string, Tensor>& want, double tolerance,
                         const std::string& what) {
    ASSERT_EQ(got.size(), want.size()) << what;
    for (const auto& [key, w] : want) {
      ASSERT_TRUE(TensorsNear(got.at(key), w, tolerance)) << what << " " << key;
    }
  }

  // Steps the GPU trainer (and the CPU one, to keep them equal) once.
  void TrainBoth(std::mt19937& rng) {
    const Tensor x = Pixels(16, rng);
    Tensor y(DType::kInt64, Shape{16});
    for (int64_t& label : y.span<int64_t>()) label = static_cast<int64_t>(rng() % 10);
    ASSERT_TRUE(gpu_->Step(x, y).ok());
    ASSERT_TRUE(cpu_->Step(x, y).ok());
  }

  std::string dir_;
  std::unique_ptr<Trainer> gpu_, cpu_;
  const SignatureDef* signature_ = nullptr;
  std::string input_;
  std::vector<int64_t> row_dims_;
};

constexpr RunOptions kGraph{.use_device_graph = true};

TEST_P(GpuGraphTest, ReplaysMatchTheSessionWithoutGraphsAndTheCpu) {
  std::mt19937 rng(std::random_device{}());
  for (int64_t rows : {1, 5, 32}) {
    for (int run = 0; run < 6; ++run) {
      const Tensor x = Pixels(rows, rng);
      RunMetadata md;
      const auto graphed = Serve(*gpu_, x, kGraph, &md);
      const Graph want = run == 0   ? Graph::kNotUsed
                         : run == 1 ? Graph::kCaptured
                                    : Graph::kReplayed;
      ASSERT_EQ(md.graph, want) << "rows " << rows << " run " << run << ": " << md.graph_note;
      const std::string what = "rows " + std::to_string(rows) + " run " + std::to_string(run);
      ExpectNear(graphed, Serve(*gpu_, x), 1e-5, what + " vs the GPU without graphs");
      ExpectNear(graphed, Serve(*cpu_, x), 1e-4, what + " vs the CPU");
    }
  }
  const DeviceGraphStats stats = gpu_->bundle().session->device_graph_stats();
  EXPECT_EQ(stats.graphs, 3);
  EXPECT_EQ(stats.captures, 3);
  EXPECT_EQ(stats.capture_failures, 0) << stats.last_failure;
  EXPECT_EQ(stats.replays, 3 * 5);
}

TEST_P(GpuGraphTest, ReplaysSeeTrainingSteps) {
  std::mt19937 rng(std::random_device{}());
  const Tensor x = Pixels(8, rng);
  Serve(*gpu_, x, kGraph);
  const auto before = Serve(*gpu_, x, kGraph);
  for (int step = 0; step < 3; ++step) {
    TrainBoth(rng);
    RunMetadata md;
    const auto after = Serve(*gpu_, x, kGraph, &md);
    EXPECT_NE(md.graph, Graph::kNotUsed) << md.graph_note;  // in-place updates keep the graph
    ExpectNear(after, Serve(*gpu_, x), 1e-5, "after step " + std::to_string(step));
    ExpectNear(after, Serve(*cpu_, x), 1e-4, "after step " + std::to_string(step) + " vs CPU");
  }
  // The weights moved, so the answers did.
  const Tensor& a = before.begin()->second;
  const Tensor& b = Serve(*gpu_, x, kGraph).begin()->second;
  EXPECT_NE(std::memcmp(a.raw_data(), b.raw_data(), a.bytes()), 0);
}

TEST_P(GpuGraphTest, VariablesGivenNewBuffersAreRecaptured) {
  std::mt19937 rng(std::random_device{}());
  const Tensor x = Pixels(4, rng);
  Serve(*gpu_, x, kGraph);
  Serve(*gpu_, x, kGraph);
  // Every variable restored from a checkpoint of fresh values (a rollback):
  // it gets a new host tensor, which its next GPU read moves to a new buffer.
  std::uniform_real_distribution<float> u(-0.1f, 0.1f);
  Session& session = *gpu_->bundle().session;
  Checkpoint fresh;
  std::vector<std::string> names;
  for (const auto& node : session.graph().nodes()) {
    if (node->op() != "VarHandleOp") continue;
    auto value = ReadVariable(session, node->name());
    ASSERT_TRUE(value.ok()) << value.status();
    if (value->dtype() != DType::kFloat) continue;
    Tensor t(DType::kFloat, value->shape());
    for (float& v : t.span<float>()) v = u(rng);
    fresh.tensors[node->name()] = t;
    names.push_back(node->name());
  }
  ASSERT_TRUE(RestoreVariables(session, names, fresh).ok());
  RunMetadata md;
  const auto moved = Serve(*gpu_, x, kGraph, &md);
  EXPECT_EQ(md.graph, Graph::kNotUsed);
  EXPECT_NE(md.graph_note.find("variable moved"), std::string::npos) << md.graph_note;
  ExpectNear(moved, Serve(*gpu_, x), 1e-5, "after the move");
  Serve(*gpu_, x, kGraph, &md);
  EXPECT_EQ(md.graph, Graph::kCaptured) << md.graph_note;
  const Tensor y = Pixels(4, rng);
  ExpectNear(Serve(*gpu_, y, kGraph, &md), Serve(*gpu_, y), 1e-5, "recaptured");
  EXPECT_EQ(md.graph, Graph::kReplayed) << md.graph_note;
}

TEST_P(GpuGraphTest, ConcurrentReplaysAndPlainRuns) {
  const std::vector<int64_t> sizes = {1, 3, 16};
  for (int64_t rows : sizes) {  // record each size first
    std::mt19937 rng(rows);
    Serve(*gpu_, Pixels(rows, rng), kGraph);
    Serve(*gpu_, Pixels(rows, rng), kGraph);
  }
  const uint32_t seed = std::random_device{}();
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(seed + t);
      for (int i = 0; i < 30; ++i) {
        const Tensor x = Pixels(sizes[rng() % sizes.size()], rng);
        const auto graphed = Serve(*gpu_, x, kGraph);
        const auto plain = Serve(*cpu_, x);
        for (const auto& [key, want] : plain) {
          if (want.dtype() == DType::kFloat && !TensorsNear(graphed.at(key), want, 1e-4)) {
            ++mismatches;
          }
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_EQ(gpu_->bundle().session->device_graph_stats().capture_failures, 0);
}

TEST_P(GpuGraphTest, ReplaysDoNotLeakDeviceMemory) {
  std::mt19937 rng(std::random_device{}());
  const Tensor x = Pixels(32, rng);
  for (int i = 0; i < 5; ++i) Serve(*gpu_, x, kGraph);
  ASSERT_TRUE(Gpu()->Synchronize().ok());
  auto in_use = [] {
    int64_t total = 0;
    for (const GpuMemoryStats& s : GpuMemoryUsage()) total += s.in_use_bytes;
    return total;
  };
  const int64_t before = in_use();
  for (int i = 0; i < 200; ++i) Serve(*gpu_, x, kGraph);
  EXPECT_EQ(in_use(), before);
}

INSTANTIATE_TEST_SUITE_P(Models, GpuGraphTest, ::testing::Values("digits_mlp", "digits_cnn"));

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
