#include "runtime/session.h"

#include <random>
#include <thread>

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;

TEST(SessionTest, RunsMatMulPlusBias) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 2});
  Output w = ops::Const(s.WithName("w"), std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Output b = ops::Const(s.WithName("b"), std::vector<float>{0.5f, -1, 2}, Shape{3});
  ops::AddV2(s.WithName("y"), ops::MatMul(s, x, w), b);
  ASSERT_TRUE(s.ok()) << s.status();
  auto session = Session::Create(std::move(graph));
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  Tensor xv = Tensor::FromVector<float>({1, 1, 2, -1}, Shape{2, 2});
  ASSERT_TRUE((*session)->Run({{"x:0", xv}}, {"y:0"}, {}, &out).ok());
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].shape(), (Shape{2, 3}));
  const float* y = out[0].data<float>();
  EXPECT_FLOAT_EQ(y[0], 1 + 4 + 0.5f);
  EXPECT_FLOAT_EQ(y[1], 2 + 5 - 1);
  EXPECT_FLOAT_EQ(y[2], 3 + 6 + 2);
  EXPECT_FLOAT_EQ(y[3], 2 - 4 + 0.5f);
}

TEST(SessionTest, UnfedPlaceholderNamesNode) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{2});
  ops::Identity(s.WithName("y"), x);
  auto session = Session::Create(std::move(graph));
  ASSERT_TRUE(session.ok());
  std::vector<Tensor> out;
  absl::Status st = (*session)->Run({}, {"y:0"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'x'"));
}

}  // namespace
}  // namespace gradserve
