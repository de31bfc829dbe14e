// Training on the GPU: the example digits models (MLP and CNN) loaded by a
// Trainer whose session's default device is cuda:0, so the forward pass, the
// gradients (graph nodes built by autodiff) and the optimizer updates all run
// there. Checked: the gradients against the same step on the CPU and against
// central finite differences of the loss on the GPU; a whole training run
// against the same run on the CPU (same seed and batches).
#ifdef GRADSERVE_HAVE_CUDA

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "graph/example_models.h"
#include "gtest/gtest.h"
#include "tests/unit/cuda/cuda_test_util.h"
#include "tools/train_loop.h"

namespace gradserve::testing {
namespace {

// The digits data: $GRADSERVE_TESTS_DIR (scripts/gpu_check.sh sets it on the
// GPU machine, whose checkout is elsewhere), else this checkout's tests/.
std::string DigitsCsv() {
  const char* dir = std::getenv("GRADSERVE_TESTS_DIR");
  return std::string(dir != nullptr ? dir : GRADSERVE_TESTS_DIR) +
         "/../configs/datasets/digits/digits.csv.gz";
}

class GpuTrainingTest : public ::testing::TestWithParam<std::string> {
 protected:
  static void SetUpTestSuite() {
    if (Gpu() == nullptr) return;
    dir_ = new std::string(::testing::TempDir() + "/gpu_training_" + std::to_string(::getpid()));
    std::filesystem::remove_all(*dir_);
    ASSERT_TRUE(WriteExampleModels(*dir_).ok());
    auto data = ReadCsvDataset(DigitsCsv(), 1.0f / 16);
    ASSERT_TRUE(data.ok()) << data.status();
    auto [train, test] = ShuffleSplit(*data, 0.8, 1);
    train_ = new Dataset(std::move(train));
    test_ = new Dataset(std::move(test));
  }
  static void TearDownTestSuite() {
    if (dir_ != nullptr) std::filesystem::remove_all(*dir_);
  }

  static std::unique_ptr<Trainer> Load(const std::string& model, bool gpu) {
    SessionOptions options{.intra_op_threads = 1, .inter_op_threads = 1};
    if (gpu) options.gpu = GpuOptions{};
    auto t = Trainer::Load(*dir_ + "/" + model + "/1", OptimizerConfig{}, options);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? std::move(*t) : nullptr;
  }

  // The first `n` test examples, shaped for `trainer`'s signature.
  static std::map<std::string, Tensor> Batch(const Trainer& trainer, int64_t n) {
    auto fitted = tools::FitFeatures(*test_, "pixels", trainer.signature().inputs().at("pixels"));
    EXPECT_TRUE(fitted.ok()) << fitted.status();
    Shape fs = fitted->features.shape();
    const int64_t row = fs.num_elements() / fs.dim(0);
    std::vector<int64_t> dims(fs.dims().begin(), fs.dims().end());
    dims[0] = n;
    Tensor x(DType::kFloat, Shape(dims));
    std::copy(fitted->features.data<float>(), fitted->features.data<float>() + n * row,
              x.data<float>());
    Tensor y(DType::kInt64, Shape{n});
    std::copy(fitted->labels.data<int64_t>(), fitted->labels.data<int64_t>() + n,
              y.data<int64_t>());
    return {{"pixels", x}, {"labels", y}};
  }

  static std::string* dir_;
  static Dataset* train_;
  static Dataset* test_;
};
std::string* GpuTrainingTest::dir_ = nullptr;
Dataset* GpuTrainingTest::train_ = nullptr;
Dataset* GpuTrainingTest::test_ = nullptr;

double MaxAbs(const Tensor& t) {
  double m = 0;
  for (double v : FromTensor(t).v) m = std::max(m, std::abs(v));
  return m;
}

TEST_P(GpuTrainingTest, GradientsMatchTheCpuAndFiniteDifferences) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<Trainer> cpu = Load(GetParam(), false), gpu = Load(GetParam(), true);
  ASSERT_TRUE(cpu && gpu);
  const auto batch = Batch(*cpu, 32);
  auto want = cpu->ComputeStep(batch);
  auto got = gpu->ComputeStep(batch);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_NEAR(got->loss, want->loss, 1e-4 * std::max(1.0, std::abs(want->loss)));
  ASSERT_EQ(got->gradients.size(), want->gradients.size());
  for (size_t i = 0; i < want->gradients.size(); ++i) {
    const auto& [name, w] = want->gradients[i];
    const Tensor g = OnHost(got->gradients[i].second);
    ASSERT_EQ(g.shape(), w.shape()) << name;
    const double scale = std::max(MaxAbs(w), 1e-3);
    const RefTensor gr = FromTensor(g), wr = FromTensor(w);
    for (int64_t j = 0; j < wr.size(); ++j) {
      ASSERT_NEAR(gr.v[j], wr.v[j], 1e-4 * scale) << name << " element " << j;
    }
  }

  // Central differences on the GPU along a random direction d of the first
  // trainable variable: (L(v + h d) - L(v - h d)) / 2h = <dL/dv, d>.
  auto state = gpu->StateTensors();
  ASSERT_TRUE(state.ok()) << state.status();
  std::map<std::string, Tensor> base(state->begin(), state->end());
  const std::string var = gpu->signature().trainable_variables(0);
  const Tensor v0 = OnHost(base.at(var));
  const RefTensor d = Random(v0.shape(), -1, 1);
  const double h = 1e-2;
  auto loss_at = [&](double sign) {
    RefTensor moved = FromTensor(v0);
    for (int64_t j = 0; j < moved.size(); ++j) moved.v[j] += sign * h * d.v[j];
    std::map<std::string, Tensor> s = base;
    s[var] = ToTensor(moved, DType::kFloat);
    EXPECT_TRUE(gpu->RestoreState(s).ok());
    auto r = gpu->ComputeStep(batch);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->loss : NAN;
  };
  const double numeric = (loss_at(+1) - loss_at(-1)) / (2 * h);
  double symbolic = 0;
  for (const auto& [name, g] : got->gradients) {
    if (name.find(var) == std::string::npos && got->gradients.size() > 1) continue;
    const RefTensor gr = FromTensor(OnHost(g));
    if (gr.size() != d.size()) continue;
    for (int64_t j = 0; j < gr.size(); ++j) symbolic += gr.v[j] * d.v[j];
    break;
  }
  EXPECT_NEAR(symbolic, numeric, 2e-3 * std::max(1.0, std::abs(numeric)));
}

// The server's split step (ComputeStep, then ApplyStep): the gradients stay
// in GPU memory between the two runs, and the result is Step's on the CPU.
TEST_P(GpuTrainingTest, TheSplitStepKeepsGradientsOnTheGpu) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<Trainer> cpu = Load(GetParam(), false), gpu = Load(GetParam(), true);
  ASSERT_TRUE(cpu && gpu);
  const auto batch = Batch(*cpu, 32);
  for (int step = 0; step < 3; ++step) {
    auto pending = gpu->ComputeStep(batch);
    ASSERT_TRUE(pending.ok()) << pending.status();
    for (const auto& [name, g] : pending->gradients) EXPECT_EQ(g.device(), "cuda:0") << name;
    ASSERT_TRUE(gpu->ApplyStep(*pending).ok());
    ASSERT_TRUE(cpu->Step(batch).ok());
  }
  auto want = cpu->StateTensors();
  auto got = gpu->StateTensors();
  ASSERT_TRUE(want.ok() && got.ok());
  ASSERT_EQ(got->size(), want->size());
  for (size_t i = 0; i < want->size(); ++i) {
    const auto& [name, w] = (*want)[i];
    const Tensor g = OnHost((*got)[i].second);
    if (w.dtype() != DType::kFloat) continue;
    const double scale = std::max(MaxAbs(w), 1e-3);
    const RefTensor gr = FromTensor(g), wr = FromTensor(w);
    for (int64_t j = 0; j < wr.size(); ++j) {
      ASSERT_NEAR(gr.v[j], wr.v[j], 1e-4 * scale) << name << " element " << j;
    }
  }
}

TEST_P(GpuTrainingTest, TrainingReachesTheCpusAccuracy) {
  SKIP_WITHOUT_GPU();
  std::unique_ptr<Trainer> cpu = Load(GetParam(), false), gpu = Load(GetParam(), true);
  ASSERT_TRUE(cpu && gpu);
  std::ostringstream log;
  const tools::TrainLoopOptions options{.epochs = 3, .seed = 5};
  auto on_cpu = tools::TrainEpochs(*cpu, *train_, *test_, options, log);
  auto on_gpu = tools::TrainEpochs(*gpu, *train_, *test_, options, log);
  ASSERT_TRUE(on_cpu.ok()) << on_cpu.status();
  ASSERT_TRUE(on_gpu.ok()) << on_gpu.status();
  const tools::EpochReport& c = on_cpu->epochs.back();
  const tools::EpochReport& g = on_gpu->epochs.back();
  EXPECT_EQ(g.step, c.step);
  ASSERT_TRUE(c.test.has_value() && g.test.has_value());
  EXPECT_GT(g.test->accuracy, 0.85) << log.str();
  EXPECT_NEAR(g.test->accuracy, c.test->accuracy, 0.02) << log.str();
  EXPECT_NEAR(g.train_loss, c.train_loss, 0.02 * c.train_loss) << log.str();
}

INSTANTIATE_TEST_SUITE_P(Digits, GpuTrainingTest, ::testing::Values("digits_mlp", "digits_cnn"));

}  // namespace
}  // namespace gradserve::testing

#endif  // GRADSERVE_HAVE_CUDA
