// The AddGradients walker: fan-in sums, pruning, "not connected", StopGradient
// and integer paths, seeds and error messages.
#include "autodiff/gradients.h"

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/shape_inference.h"
#include "gtest/gtest.h"
#include "runtime/session.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;

TEST(AddGradientsTest, XNotReachingYIsNotConnected) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kDouble, Shape{2});
  Output other = ops::Placeholder(s, DType::kDouble, Shape{2});
  Output y = ops::Identity(s, other);
  auto grads = AddGradients(s, {y}, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_FALSE((*grads)[0].valid());
}

TEST(AddGradientsTest, StopGradientBlocksTheGradient) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kDouble, Shape{2});
  Output y = ops::StopGradient(s, x);
  auto grads = AddGradients(s, {y}, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_FALSE((*grads)[0].valid());
}

TEST(AddGradientsTest, FanInGradientsAreSummedAndIdentityPassesThrough) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s.WithName("x"), DType::kDouble, Shape{3});
  // y1 = x, y2 = x: d(y1 + y2)/dx = 2 (two seeds of ones fanning into x).
  Output y1 = ops::Identity(s, x);
  Output y2 = ops::Identity(s, x);
  auto grads = AddGradients(s, {y1, y2}, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  ASSERT_TRUE((*grads)[0].valid());
  const std::string fetch = (*grads)[0].name();
  auto session = Session::Create(g.ToGraphDef());
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  ASSERT_TRUE((*session)->Run({{"x", Tensor::FromVector<double>({1.5, -2, 7})}}, {fetch}, {}, &out).ok());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(out[0].data<double>()[i], 2.0);
}

TEST(AddGradientsTest, SeedMustMatchDtype) {
  Graph g;
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kDouble, Shape{2});
  Output y = ops::Identity(s, x);
  Output seed = ops::Const(s, std::vector<float>{1, 1}, Shape{2});
  auto grads = AddGradients(s, {y}, {x}, {seed});
  EXPECT_EQ(grads.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(grads.status().message(), HasSubstr("float"));
}

TEST(AddGradientsTest, MissingGradientNamesTheOp) {
  // A registry with every op plus one that no gradient function knows.
  OpRegistry registry;
  ASSERT_TRUE(RegisterAllOps(registry).ok());
  ASSERT_TRUE(registry
                  .Register(OpDefBuilder("MysteryOp")
                                .Input("x", "T")
                                .Output("y", "T")
                                .TypeAttr("T", FloatTypes())
                                .SetShapeFn(shape_fn::Unchanged))
                  .ok());
  Graph g(registry);
  Scope s(&g);
  Output x = ops::Placeholder(s, DType::kDouble, Shape{2});
  Output y = s.WithName("mystery").AddNode("MysteryOp", {x});
  ASSERT_TRUE(s.ok()) << s.status();
  auto grads = AddGradients(s, {y}, {x});
  EXPECT_EQ(grads.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(grads.status().message(), HasSubstr("MysteryOp"));
  EXPECT_THAT(grads.status().message(), HasSubstr("'mystery'"));
}

}  // namespace
}  // namespace gradserve
