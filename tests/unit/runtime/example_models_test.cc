// The example models (graph/example_models.h) are written, loaded back and run,
// and match a float64 computation of the same networks from their variables.
#include "graph/example_models.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/saved_model_loader.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using Vec = std::vector<double>;

Vec Values(const Tensor& t) { return testing::FromTensor(t).v; }

// x [n, in] @ w [in, out] + b, optionally ReLU.
Vec Dense(const Vec& x, int64_t n, const Vec& w, const Vec& b, int64_t in, int64_t out, bool relu) {
  Vec y(n * out);
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t j = 0; j < out; ++j) {
      double acc = b[j];
      for (int64_t k = 0; k < in; ++k) acc += x[r * in + k] * w[k * out + j];
      y[r * out + j] = relu ? std::max(acc, 0.0) : acc;
    }
  }
  return y;
}

Vec Softmax(const Vec& logits, int64_t n, int64_t classes) {
  Vec p(logits.size());
  for (int64_t r = 0; r < n; ++r) {
    double max = logits[r * classes], sum = 0;
    for (int64_t j = 0; j < classes; ++j) max = std::max(max, logits[r * classes + j]);
    for (int64_t j = 0; j < classes; ++j) sum += std::exp(logits[r * classes + j] - max);
    for (int64_t j = 0; j < classes; ++j)
      p[r * classes + j] = std::exp(logits[r * classes + j] - max) / sum;
  }
  return p;
}

class ExampleModelsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/example_models_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    ASSERT_TRUE(WriteExampleModels(dir_).ok()) << WriteExampleModels(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Loads a model and gives every bias random values, so the reference
  // comparison also checks BiasAdd.
  SavedModelBundle Load(const std::string& name) {
    absl::StatusOr<SavedModelBundle> bundle = LoadSavedModel(dir_ + "/" + name + "/1");
    EXPECT_TRUE(bundle.ok()) << bundle.status();
    if (!bundle.ok()) return {};
    for (const std::string& var : bundle->meta.variables()) {
      if (!var.ends_with("/bias")) continue;
      const Tensor old = *ReadVariable(*bundle->session, var);
      EXPECT_TRUE(AssignVariable(*bundle->session, var,
                                 testing::ToTensor(testing::Random(old.shape()), DType::kFloat))
                      .ok());
    }
    return *std::move(bundle);
  }
  Vec Var(const SavedModelBundle& b, const std::string& name) {
    return Values(*ReadVariable(*b.session, name));
  }

  // Runs serving_default and checks shapes, that probabilities are a
  // distribution, and that they match `want_logits` after a float64 softmax.
  void CheckOutputs(const SavedModelBundle& bundle, const std::string& input_key,
                    const Tensor& input, const Vec& want_logits) {
    const int64_t n = input.dim(0);
    absl::StatusOr<std::map<std::string, Tensor>> out =
        RunSignature(bundle, "serving_default", {{input_key, input}});
    ASSERT_TRUE(out.ok()) << out.status();
    const Tensor& logits = out->at("logits");
    const Tensor& probs = out->at("probabilities");
    ASSERT_EQ(logits.shape(), (Shape{n, 10}));
    ASSERT_EQ(probs.shape(), (Shape{n, 10}));
    const Vec want = Softmax(want_logits, n, 10);
    const Vec got_logits = Values(logits), got = Values(probs);
    for (int64_t r = 0; r < n; ++r) {
      double sum = 0;
      for (int64_t j = 0; j < 10; ++j) {
        const int64_t i = r * 10 + j;
        EXPECT_GE(got[i], 0.0);
        EXPECT_NEAR(got[i], want[i], 1e-5) << "row " << r << " class " << j;
        EXPECT_NEAR(got_logits[i], want_logits[i], 1e-4 * std::max(1.0, std::abs(want_logits[i])));
        sum += got[i];
      }
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << r;
    }
  }

  std::string dir_;
};

TEST_F(ExampleModelsTest, DigitsMlpMatchesFloat64Reference) {
  SavedModelBundle b = Load("digits_mlp");
  ASSERT_NE(b.session, nullptr);
  EXPECT_EQ(b.meta.variables_size(), 6);
  for (int64_t n : {1, 7}) {
    const testing::RefTensor x = testing::Random(Shape{n, 64}, 0, 16);
    Vec h = Dense(x.v, n, Var(b, "dense1/kernel"), Var(b, "dense1/bias"), 64, 128, true);
    h = Dense(h, n, Var(b, "dense2/kernel"), Var(b, "dense2/bias"), 128, 64, true);
    const Vec logits = Dense(h, n, Var(b, "dense3/kernel"), Var(b, "dense3/bias"), 64, 10, false);
    CheckOutputs(b, "pixels", testing::ToTensor(x, DType::kFloat), logits);
  }
}

TEST_F(ExampleModelsTest, DigitsCnnMatchesFloat64Reference) {
  SavedModelBundle b = Load("digits_cnn");
  ASSERT_NE(b.session, nullptr);
  EXPECT_EQ(b.meta.variables_size(), 4);
  const int64_t n = 3;
  const testing::RefTensor x = testing::Random(Shape{n, 8, 8, 1}, 0, 1);
  const Vec k = Var(b, "conv/kernel"), cb = Var(b, "conv/bias");
  // Conv 3x3 SAME (pad 1), bias, ReLU, then 2x2 max pooling; NHWC throughout.
  Vec pooled(n * 4 * 4 * 8, -INFINITY);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t h = 0; h < 8; ++h) {
      for (int64_t w = 0; w < 8; ++w) {
        for (int64_t c = 0; c < 8; ++c) {
          double acc = cb[c];
          for (int64_t kh = 0; kh < 3; ++kh) {
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t y = h + kh - 1, z = w + kw - 1;
              if (y < 0 || y >= 8 || z < 0 || z >= 8) continue;
              acc += x.v[(i * 8 + y) * 8 + z] * k[(kh * 3 + kw) * 8 + c];
            }
          }
          double& p = pooled[((i * 4 + h / 2) * 4 + w / 2) * 8 + c];
          p = std::max(p, std::max(acc, 0.0));
        }
      }
    }
  }
  const Vec logits = Dense(pooled, n, Var(b, "dense/kernel"), Var(b, "dense/bias"), 128, 10, false);
  CheckOutputs(b, "images", testing::ToTensor(x, DType::kFloat), logits);
}

TEST_F(ExampleModelsTest, SignaturesDescribeServingAndTraining) {
  SavedModelBundle b = Load("digits_mlp");
  ASSERT_NE(b.session, nullptr);
  const SignatureDef* serving = b.FindSignature("serving_default");
  ASSERT_NE(serving, nullptr);
  const TensorInfo& pixels = serving->inputs().at("pixels");
  EXPECT_EQ(pixels.dtype(), DT_FLOAT);
  EXPECT_EQ(Shape::FromProto(pixels.tensor_shape()), (Shape{-1, 64}));
  EXPECT_EQ(Shape::FromProto(serving->outputs().at("probabilities").tensor_shape()),
            (Shape{-1, 10}));
  const SignatureDef* train = b.FindSignature("train");
  ASSERT_NE(train, nullptr);
  EXPECT_THAT(train->label_keys(), ::testing::ElementsAre("labels"));
  EXPECT_EQ(train->inputs().at("labels").dtype(), DT_INT64);
  EXPECT_EQ(Shape::FromProto(train->inputs().at("labels").tensor_shape()), (Shape{-1}));
  EXPECT_EQ(train->trainable_variables_size(), 6);
}

TEST(ExampleModelsBuildTest, SameSeedGivesIdenticalWeights) {
  const ExampleModel a = *BuildDigitsCnn(5), b = *BuildDigitsCnn(5), c = *BuildDigitsCnn(6);
  ASSERT_EQ(a.variables.size(), b.variables.size());
  bool differs = false;
  for (size_t i = 0; i < a.variables.size(); ++i) {
    const Tensor& x = a.variables[i].second;
    EXPECT_EQ(0, std::memcmp(x.raw_data(), b.variables[i].second.raw_data(), x.bytes()));
    differs |= std::memcmp(x.raw_data(), c.variables[i].second.raw_data(), x.bytes()) != 0;
  }
  EXPECT_TRUE(differs);
  // Glorot-uniform limit for the 3x3x1x8 kernel: sqrt(6 / (9 + 72)).
  const Tensor& kernel = a.variables[0].second;
  const double limit = std::sqrt(6.0 / 81.0);
  for (float v : kernel.span<float>()) EXPECT_LE(std::abs(v), limit);
}

}  // namespace
}  // namespace gradserve
