// The training loop on the example digits models and the shipped digits data:
// the models learn, the evaluation loss is the train signature's loss, the
// batches follow the seed, features are fitted to the signature's shape, and
// bad inputs are rejected before anything runs.
#include "tools/train_loop.h"

#include <unistd.h>

#include <filesystem>
#include <sstream>

#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "graph/example_models.h"
#include "gtest/gtest.h"

namespace gradserve::tools {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

const std::string kDigitsCsv =
    std::string(GRADSERVE_TESTS_DIR) + "/../configs/datasets/digits/digits.csv.gz";

class TrainLoopTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(::testing::TempDir() + "/train_loop_" + std::to_string(::getpid()));
    std::filesystem::remove_all(*dir_);
    ASSERT_TRUE(WriteExampleModels(*dir_).ok());
    auto data = ReadCsvDataset(kDigitsCsv, 1.0f / 16);
    ASSERT_TRUE(data.ok()) << data.status();
    auto [train, test] = ShuffleSplit(*data, 0.8, 1);
    train_ = new Dataset(std::move(train));
    test_ = new Dataset(std::move(test));
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete train_;
    delete test_;
  }

  static std::unique_ptr<Trainer> Load(const std::string& model, OptimizerConfig config = {}) {
    // One thread: the same seed must give bit-identical steps.
    auto trainer = Trainer::Load(*dir_ + "/" + model + "/1", config,
                                 {.intra_op_threads = 1, .inter_op_threads = 1});
    EXPECT_TRUE(trainer.ok()) << trainer.status();
    return trainer.ok() ? std::move(*trainer) : nullptr;
  }

  static std::string* dir_;
  static Dataset* train_;  // 1438 examples
  static Dataset* test_;   // 359
};
std::string* TrainLoopTest::dir_ = nullptr;
Dataset* TrainLoopTest::train_ = nullptr;
Dataset* TrainLoopTest::test_ = nullptr;

TEST_F(TrainLoopTest, DigitsMlpLearnsAndPrintsOneLinePerEpoch) {
  std::unique_ptr<Trainer> trainer = Load("digits_mlp");
  ASSERT_NE(trainer, nullptr);
  auto before = Evaluate(trainer->bundle(), *test_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->examples, 359);
  EXPECT_LT(before->accuracy, 0.3);

  std::ostringstream log;
  auto report = TrainEpochs(*trainer, *train_, *test_, {.epochs = 3, .seed = 5}, log);
  ASSERT_TRUE(report.ok()) << report.status();
  ASSERT_EQ(report->epochs.size(), 3u);
  EXPECT_EQ(report->epochs.back().step, 3 * 23);  // ceil(1438 / 64) steps per epoch
  EXPECT_EQ(trainer->step(), 3 * 23);
  for (size_t i = 1; i < 3; ++i) {
    EXPECT_LT(report->epochs[i].train_loss, report->epochs[i - 1].train_loss);
  }
  const EpochReport& last = report->epochs.back();
  ASSERT_TRUE(last.train_accuracy.has_value());
  EXPECT_GT(*last.train_accuracy, 0.7);
  ASSERT_TRUE(last.test.has_value());
  EXPECT_GT(last.test->accuracy, 0.8);
  EXPECT_LT(last.test->loss, before->loss);
  EXPECT_GT(last.examples_per_second, 0);

  const std::vector<std::string> lines = absl::StrSplit(log.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << log.str();
  EXPECT_THAT(lines[2], MatchesRegex("epoch 3/3  loss [0-9.]+  accuracy [0-9.]+  test_loss "
                                     "[0-9.]+  test_accuracy [0-9.]+  [0-9]+ examples/s  "
                                     "[0-9.]+ s"));
  // The loss Evaluate computes from the logits is the train signature's.
  auto loss = RunSignature(trainer->bundle(), kTrainSignatureKey,
                           {{"pixels", test_->features}, {"labels", test_->labels}}, {"loss"});
  ASSERT_TRUE(loss.ok()) << loss.status();
  auto after = Evaluate(trainer->bundle(), *test_, 100);
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_NEAR(after->loss, loss->at("loss").data<float>()[0], 1e-4);
  EXPECT_DOUBLE_EQ(after->accuracy, last.test->accuracy);
}

TEST_F(TrainLoopTest, TheSeedFixesTheBatches) {
  auto losses = [&](uint64_t seed) {
    std::unique_ptr<Trainer> trainer = Load("digits_mlp");
    std::ostringstream log;
    auto report = TrainEpochs(*trainer, *train_, Dataset{},
                              {.epochs = 2, .seed = seed, .train_accuracy = false}, log);
    EXPECT_TRUE(report.ok()) << report.status();
    std::vector<double> out;
    for (const EpochReport& r : report->epochs) {
      EXPECT_FALSE(r.train_accuracy.has_value());
      EXPECT_FALSE(r.test.has_value());
      out.push_back(r.train_loss);
    }
    return out;
  };
  const std::vector<double> a = losses(3);
  EXPECT_EQ(losses(3), a);
  EXPECT_NE(losses(4), a);
}

TEST_F(TrainLoopTest, FeaturesAreFittedToTheSignatureShape) {
  // digits_cnn takes images [-1,8,8,1]; the data is [N,64].
  std::unique_ptr<Trainer> trainer =
      Load("digits_cnn", {.kind = OptimizerKind::kMomentum, .learning_rate = 0.05});
  ASSERT_NE(trainer, nullptr);
  std::ostringstream log, progress;
  auto report = TrainEpochs(*trainer, *train_, *test_, {.epochs = 2, .progress = &progress}, log);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_GT(report->epochs.back().test->accuracy, 0.6);
  EXPECT_THAT(progress.str(), HasSubstr("\repoch 2/2  batch 23/23  loss "));
  EXPECT_THAT(progress.str(), ::testing::EndsWith("\r\033[K"));

  const TensorInfo& images = trainer->signature().inputs().at("images");
  auto fitted = FitFeatures(*test_, "images", images);
  ASSERT_TRUE(fitted.ok()) << fitted.status();
  EXPECT_EQ(fitted->features.shape(), (Shape{359, 8, 8, 1}));
  Dataset wide{Tensor(DType::kFloat, Shape{2, 65}), Tensor::FromVector<int64_t>({0, 1})};
  auto wrong = FitFeatures(wide, "images", images);
  ASSERT_FALSE(wrong.ok());
  EXPECT_THAT(wrong.status().message(),
              HasSubstr("input 'images' wants shape [-1,8,8,1]: cannot reshape examples of "
                        "shape [65] to [8,8,1]"));
}

TEST_F(TrainLoopTest, RejectionsComeBeforeAnyStep) {
  std::unique_ptr<Trainer> trainer = Load("digits_mlp");
  ASSERT_NE(trainer, nullptr);
  std::ostringstream log;
  Dataset bad = Take(*train_, 0, 10);
  bad.labels.data<int64_t>()[7] = 10;
  auto r = TrainEpochs(*trainer, bad, Dataset{}, {}, log);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(),
              HasSubstr("training data: label 10 (example 7, counting from 0) is out of range: "
                        "the model predicts 10 classes (0..9)"));
  r = TrainEpochs(*trainer, *train_, bad, {}, log);
  EXPECT_THAT(r.status().message(), HasSubstr("test data: label 10"));
  EXPECT_THAT(Evaluate(trainer->bundle(), bad).status().message(),
              HasSubstr("evaluation data: label 10"));
  EXPECT_THAT(CheckLabels(trainer->bundle(), bad, "x.csv").message(),
              HasSubstr("x.csv: label 10 (example 7"));
  EXPECT_THAT(TrainEpochs(*trainer, Dataset{}, Dataset{}, {}, log).status().message(),
              HasSubstr("the training set is empty"));
  EXPECT_THAT(TrainEpochs(*trainer, *train_, Dataset{}, {.epochs = 0}, log).status().message(),
              HasSubstr("epochs must be at least 1"));
  EXPECT_THAT(Evaluate(trainer->bundle(), Dataset{}).status().message(),
              HasSubstr("the data set is empty"));
  EXPECT_EQ(Evaluate(trainer->bundle(), *test_, 64, "nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(trainer->step(), 0);
  EXPECT_EQ(log.str(), "");
}

TEST(TrainLoopFormatTest, FormatEpoch) {
  EpochReport r{.epoch = 2, .train_loss = 0.25, .examples_per_second = 1234.4, .seconds = 1.5};
  EXPECT_EQ(FormatEpoch(r, 5), "epoch 2/5  loss 0.2500  1234 examples/s  1.50 s");
  r.train_accuracy = 0.75;
  r.test = EvalResult{.examples = 10, .accuracy = 0.5, .loss = 1};
  EXPECT_EQ(FormatEpoch(r, 5),
            "epoch 2/5  loss 0.2500  accuracy 0.7500  test_loss 1.0000  test_accuracy 0.5000  "
            "1234 examples/s  1.50 s");
}

}  // namespace
}  // namespace gradserve::tools
