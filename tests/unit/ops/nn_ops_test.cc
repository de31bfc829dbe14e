// nn family beyond the conformance cases: window arithmetic against TensorFlow's
// documented examples, shape inference on partly known shapes, and the builder
// functions composed into a small network.
#include <cmath>

#include "gtest/gtest.h"
#include "graph/builder/ops.h"
#include "graph/ops/nn_ops.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using testing::Random;
using testing::ToTensor;
using Ints = std::vector<int64_t>;

TEST(ComputeWindowDimTest, MatchesTensorFlowPaddingRules) {
  const int64_t none[2] = {0, 0};
  struct Row {
    int64_t in, k, dilation, stride;
    Padding padding;
    int64_t out, pad_before, pad_after;
  };
  const Row rows[] = {
      {7, 3, 1, 2, Padding::kSame, 4, 1, 1},   // ceil(7/2); pad 2 split evenly
      {6, 3, 1, 2, Padding::kSame, 3, 0, 1},   // odd padding: the extra goes after
      {5, 4, 1, 1, Padding::kSame, 5, 1, 2},
      {7, 3, 1, 2, Padding::kValid, 3, 0, 0},  // ceil((7 - 3 + 1) / 2)
      {7, 3, 2, 1, Padding::kValid, 3, 0, 0},  // dilated filter spans 5
      {2, 3, 1, 1, Padding::kValid, 0, 0, 0},  // TF allows an empty output here
      {0, 3, 1, 2, Padding::kSame, 0, 0, 1},   // TF still computes the padding
  };
  for (const Row& r : rows) {
    auto d = ComputeWindowDim(r.in, r.k, r.dilation, r.stride, r.padding, none);
    ASSERT_TRUE(d.ok()) << d.status();
    EXPECT_EQ(d->output, r.out) << "in " << r.in << " k " << r.k << " stride " << r.stride;
    EXPECT_EQ(d->pad_before, r.pad_before) << "in " << r.in << " k " << r.k;
    EXPECT_EQ(d->pad_after, r.pad_after) << "in " << r.in << " k " << r.k;
  }
  const int64_t pads[2] = {1, 2};
  auto e = ComputeWindowDim(5, 3, 1, 2, Padding::kExplicit, pads);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->output, 3);  // (5 + 3 - 3) / 2 + 1
  EXPECT_FALSE(ComputeWindowDim(2, 4, 1, 1, Padding::kValid, none).ok());
  EXPECT_EQ(ComputeWindowDim(-1, 3, 1, 1, Padding::kSame, none)->output, -1);
}

TEST(NnShapeTest, KnownDimensionsSurvivePartlyKnownInputs) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kFloat, Shape{-1, -1, 28, 3});
  Output w = ops::Placeholder(s, DType::kFloat, Shape{3, 3, 3, 8});
  Output conv = ops::Conv2D(s, x, w, {1, 2, 2, 1}, "SAME");
  Output img = ops::Placeholder(s, DType::kFloat, Shape{-1, 7, 9, 3});
  Output max = ops::MaxPool(s, img, {1, 2, 2, 1}, {1, 2, 2, 1}, "VALID");
  Output avg = ops::AvgPool(s, img, {1, 3, 3, 1}, {1, 2, 2, 1}, "SAME");
  Output bias = ops::BiasAdd(s, ops::Placeholder(s, DType::kFloat, Shape{2, -1}),
                             ops::Placeholder(s, DType::kFloat, Shape{7}));
  auto bn = ops::FusedBatchNormV3(
      s, ops::Placeholder(s, DType::kFloat, Shape{-1, 4, 4, -1}),
      ops::Placeholder(s, DType::kFloat, Shape{5}), ops::Placeholder(s, DType::kFloat, Shape{5}),
      ops::Placeholder(s, DType::kFloat, Shape{0}), ops::Placeholder(s, DType::kFloat, Shape{0}));
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(conv.shape(), (Shape{-1, -1, 14, 8}));
  EXPECT_EQ(max.shape(), (Shape{-1, 3, 4, 3}));
  EXPECT_EQ(avg.shape(), (Shape{-1, 4, 5, 3}));
  EXPECT_EQ(bias.shape(), (Shape{2, 7}));
  EXPECT_EQ(bn.y.shape(), (Shape{-1, 4, 4, 5}));
  EXPECT_EQ(bn.batch_variance.shape(), (Shape{5}));
  EXPECT_TRUE(bn.reserve_space_3.shape().unknown_rank());
}

TEST(NnBuilderTest, SmallConvNetRunsEndToEnd) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  auto constant = [&](Shape shape, double lo, double hi) {
    return ops::Const(s, ToTensor(Random(shape, lo, hi), DType::kFloat));
  };
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 8, 8, 3});
  Output h = ops::Conv2D(s, x, constant({3, 3, 3, 4}, -1, 1), {1, 1, 1, 1}, "SAME");
  h = ops::BiasAdd(s, h, constant({4}, -1, 1));
  h = ops::FusedBatchNormV3(s, h, constant({4}, 0.5, 1.5), constant({4}, -1, 1),
                            constant({4}, -1, 1), constant({4}, 0.5, 2), {.is_training = false})
          .y;
  h = ops::MaxPool(s, ops::Relu(s, h), {1, 2, 2, 1}, {1, 2, 2, 1}, "VALID");
  h = ops::Conv2D(s, h, constant({1, 1, 4, 5}, -1, 1), {1, 1, 1, 1}, "VALID");
  Output y = ops::Softmax(s.WithName("y"), h);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(y.shape(), (Shape{-1, 4, 4, 5}));

  auto session = Session::Create(std::move(graph), {.intra_op_threads = 2});
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  const Tensor xv = ToTensor(Random(Shape{2, 8, 8, 3}), DType::kFloat);
  ASSERT_TRUE((*session)->Run({{"x:0", xv}}, {"y:0"}, {}, &out).ok());
  ASSERT_EQ(out[0].shape(), (Shape{2, 4, 4, 5}));
  const float* p = out[0].data<float>();
  for (int64_t row = 0; row < 2 * 4 * 4; ++row) {
    double sum = 0;
    for (int c = 0; c < 5; ++c) sum += p[row * 5 + c];
    EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
  }
}

TEST(NnBuilderTest, FusedBatchNormDefaultsToTrainingStatistics) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2, 1, 3, 2});
  Output ones = ops::Const(s, std::vector<float>{1, 1}, Shape{2});
  Output zeros = ops::Const(s, std::vector<float>{0, 0}, Shape{2});
  Output empty = ops::Const(s, std::vector<float>{}, Shape{0});
  ops::FusedBatchNormV3(s.WithName("bn"), x, ones, zeros, empty, empty);
  ASSERT_TRUE(s.ok()) << s.status();
  auto session = Session::Create(std::move(graph), {.intra_op_threads = 2});
  ASSERT_TRUE(session.ok()) << session.status();
  // Channel 0 holds 1..6, channel 1 holds 10 everywhere.
  const Tensor xv = Tensor::FromVector<float>({1, 10, 2, 10, 3, 10, 4, 10, 5, 10, 6, 10},
                                              Shape{2, 1, 3, 2});
  std::vector<Tensor> out;
  ASSERT_TRUE((*session)->Run({{"x:0", xv}}, {"bn:0", "bn:1", "bn:2"}, {}, &out).ok());
  EXPECT_FLOAT_EQ(out[1].data<float>()[0], 3.5f);
  EXPECT_FLOAT_EQ(out[1].data<float>()[1], 10.0f);
  EXPECT_FLOAT_EQ(out[2].data<float>()[0], 3.5f);  // unbiased: 17.5 / 5
  EXPECT_FLOAT_EQ(out[2].data<float>()[1], 0.0f);
  // y has zero mean and (biased) unit variance per channel, up to epsilon.
  EXPECT_NEAR(out[0].data<float>()[0], (1 - 3.5) / std::sqrt(17.5 / 6 + 1e-4), 1e-5);
  EXPECT_FLOAT_EQ(out[0].data<float>()[1], 0.0f);
}

}  // namespace
}  // namespace gradserve
