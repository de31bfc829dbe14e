// The example models learn their data sets by their recipes
// (tools/example_training.h): the digits MLP reaches the accuracy the README
// promises from a fixed seed on the 80/20 split, and the Fashion-MNIST models
// learn on a subset (the full runs are `make-example-models --full`, README).
#include "tools/example_training.h"

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <sstream>

#include "graph/example_models.h"
#include "gtest/gtest.h"

namespace gradserve::tools {
namespace {

const char kFashionDir[] = "/usr/share/datasets/fashion-mnist";

class ExampleTrainingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/example_training_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(WriteExampleModels(dir_ + "/init").ok());
    options_.digits_csv =
        std::string(GRADSERVE_TESTS_DIR) + "/../configs/datasets/digits/digits.csv.gz";
    options_.fashion_dir = kFashionDir;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  ExampleTrainingOptions options_;
};

TEST_F(ExampleTrainingTest, DigitsMlpReaches97PercentOnTheHeldOutFifth) {
  const auto start = std::chrono::steady_clock::now();
  std::ostringstream log;
  auto report = TrainExampleModel("digits_mlp", dir_ + "/init/digits_mlp/1",
                                  dir_ + "/digits_mlp/1", options_, log);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_TRUE(report.ok()) << report.status();
  const EpochReport& last = report->epochs.back();
  ASSERT_TRUE(last.test.has_value());
  EXPECT_EQ(last.test->examples, 359);
  EXPECT_GE(last.test->accuracy, 0.97) << log.str();
  // The budget is 30 s on 2 cores; it takes about 1 s.
  EXPECT_LT(seconds, 30.0);
  std::cout << "digits_mlp: test accuracy " << last.test->accuracy << " after "
            << report->epochs.size() << " epochs in " << seconds << " s\n";

  // The saved model serves what it learned.
  auto bundle = LoadSavedModel(dir_ + "/digits_mlp/1");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  auto data = ExampleData("digits_mlp", options_);
  ASSERT_TRUE(data.ok());
  auto eval = Evaluate(*bundle, data->second);
  ASSERT_TRUE(eval.ok()) << eval.status();
  EXPECT_DOUBLE_EQ(eval->accuracy, last.test->accuracy);
}

TEST_F(ExampleTrainingTest, FashionModelsLearnOnASubset) {
  if (!std::filesystem::exists(std::string(kFashionDir) + "/train-images-idx3-ubyte.gz")) {
    GTEST_SKIP() << "Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)";
  }
  auto data = ExampleData("fashion_mlp", options_);
  ASSERT_TRUE(data.ok()) << data.status();
  const Dataset train = Take(data->first, 0, 6000);
  const Dataset test = Take(data->second, 0, 2000);
  // Thresholds well above chance (10%) and below what these subsets reach
  // (measured: MLP 0.77, CNN 0.62), so a model that does not learn fails.
  for (const auto& [model, examples, min_accuracy] :
       {std::tuple<std::string, int64_t, double>{"fashion_mlp", 6000, 0.70},
        {"fashion_cnn", 2000, 0.45}}) {
    auto recipe = RecipeFor(model, /*full=*/false);
    ASSERT_TRUE(recipe.ok());
    recipe->loop.epochs = 1;
    auto trainer = Trainer::Load(dir_ + "/init/" + model + "/1", recipe->optimizer);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    std::ostringstream log;
    auto report = TrainEpochs(**trainer, Take(train, 0, examples), test, recipe->loop, log);
    ASSERT_TRUE(report.ok()) << report.status();
    const double accuracy = report->epochs.back().test->accuracy;
    std::cout << model << ": " << log.str();
    EXPECT_GE(accuracy, min_accuracy) << model;
  }
}

TEST(ExampleRecipeTest, UnknownModelIsNotFound) {
  EXPECT_EQ(RecipeFor("resnet", false).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace gradserve::tools
