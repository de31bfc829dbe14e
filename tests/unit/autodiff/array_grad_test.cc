// Second-order gradients through the linear array ops. The gradient of a linear
// op does not depend on its input, so the single-op GradCase harness reports
// "not connected" at order 2; here the op is composed with a square,
//   L = sum_k W_k * f(x)_k^2,  dL/dx_j = 2 x_j W_{m(j)},
//   L2 = <V, dL/dx>,          dL2/dx_j = 2 V_j W_{m(j)},
// where m maps an input position to the output position f moves it to (-1: x_j
// is not read, W_{-1} = 0), so the second gradient runs the op's gradient
// function on its own output.
#include <functional>

#include "autodiff/gradients.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using testing::RefTensor;

void CheckSecondOrder(const Shape& x_shape, const Shape& y_shape,
                      const std::function<Output(const Scope&, Output)>& op,
                      const std::function<int64_t(int64_t)>& out_pos) {
  SCOPED_TRACE(absl::StrCat("seed ", testing::Seed()));
  Graph g;
  Scope s(&g);
  const RefTensor xv = testing::Random(x_shape);
  const RefTensor w = testing::Random(y_shape);
  const RefTensor v = testing::Random(x_shape);
  Output x = ops::Placeholder(s.WithName("x"), DType::kDouble, x_shape);
  Output y = op(s, x);
  Output z = ops::Mul(s, y, y);
  auto g1 = AddGradients(s, {z}, {x}, {ops::Const(s, testing::ToTensor(w, DType::kDouble))});
  ASSERT_TRUE(g1.ok()) << g1.status();
  ASSERT_TRUE((*g1)[0].valid());
  auto g2 = AddGradients(s, *g1, {x}, {ops::Const(s, testing::ToTensor(v, DType::kDouble))});
  ASSERT_TRUE(g2.ok()) << g2.status();
  ASSERT_TRUE((*g2)[0].valid());
  ASSERT_TRUE(s.ok()) << s.status();
  const std::vector<std::string> fetches = {(*g1)[0].name(), (*g2)[0].name()};
  auto session = Session::Create(g.ToGraphDef());
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  const absl::Status run =
      (*session)->Run({{"x", testing::ToTensor(xv, DType::kDouble)}}, fetches, {}, &out);
  ASSERT_TRUE(run.ok()) << run;
  for (int64_t j = 0; j < xv.size(); ++j) {
    const int64_t pos = out_pos(j);
    const double wj = pos < 0 ? 0.0 : w.v[pos];
    EXPECT_NEAR(out[0].data<double>()[j], 2 * xv.v[j] * wj, 1e-12) << "first order, element " << j;
    EXPECT_NEAR(out[1].data<double>()[j], 2 * v.v[j] * wj, 1e-12) << "second order, element " << j;
  }
}

TEST(ArrayGradTest, TransposeSecondOrderMatchesAnalytic) {
  // x [2, 3, 4] -> perm [2, 0, 1] -> y [4, 2, 3]; x[a, b, c] lands at y[c, a, b].
  CheckSecondOrder(
      Shape{2, 3, 4}, Shape{4, 2, 3},
      [](const Scope& s, Output x) {
        return ops::Transpose(s, x, ops::Const(s, std::vector<int32_t>{2, 0, 1}, Shape{3}));
      },
      [](int64_t j) {
        const int64_t a = j / 12, b = (j / 4) % 3, c = j % 4;
        return c * 6 + a * 3 + b;
      });
}

TEST(ArrayGradTest, ReshapeSecondOrderMatchesAnalytic) {
  CheckSecondOrder(
      Shape{2, 3, 2}, Shape{4, 3},
      [](const Scope& s, Output x) {
        return ops::Reshape(s, x, ops::Const(s, std::vector<int32_t>{-1, 3}, Shape{2}));
      },
      [](int64_t j) { return j; });
}

TEST(ArrayGradTest, PadSecondOrderMatchesAnalytic) {
  // x [2, 3] padded by [[1, 0], [2, 1]] -> y [3, 6]; x[a, b] lands at y[a + 1, b + 2].
  CheckSecondOrder(
      Shape{2, 3}, Shape{3, 6},
      [](const Scope& s, Output x) {
        return ops::Pad(s, x, ops::Const(s, std::vector<int32_t>{1, 0, 2, 1}, Shape{2, 2}));
      },
      [](int64_t j) { return (j / 3 + 1) * 6 + j % 3 + 2; });
}

TEST(ArrayGradTest, StridedSliceSecondOrderMatchesAnalytic) {
  // x[1::2, ::2] of a [4, 5] x -> y [2, 3]; through StridedSliceGrad and back.
  CheckSecondOrder(
      Shape{4, 5}, Shape{2, 3},
      [](const Scope& s, Output x) {
        auto ints = [&](std::vector<int32_t> v) { return ops::Const(s, v, Shape{2}); };
        return ops::StridedSlice(s, x, ints({1, 0}), ints({4, 5}), ints({2, 2}));
      },
      [](int64_t j) -> int64_t {
        const int64_t a = j / 5, b = j % 5;
        if (a % 2 == 0 || b % 2 == 1) return -1;
        return (a / 2) * 3 + b / 2;
      });
}

TEST(ArrayGradTest, GatherV2SecondOrderMatchesAnalytic) {
  // Rows 3, 0, 4 of a [5, 2] x -> y [3, 2]; through UnsortedSegmentSum and back.
  CheckSecondOrder(
      Shape{5, 2}, Shape{3, 2},
      [](const Scope& s, Output x) {
        return ops::GatherV2(s, x, ops::Const(s, std::vector<int32_t>{3, 0, 4}, Shape{3}),
                             ops::Const<int32_t>(s, 0));
      },
      [](int64_t j) -> int64_t {
        const int64_t row[] = {1, -1, -1, 0, 2};
        const int64_t r = row[j / 2];
        return r < 0 ? -1 : r * 2 + j % 2;
      });
}

// With unknown static shapes SelectV2's gradient reduces through
// BroadcastGradientArgs instead of build-time axes.
TEST(ArrayGradTest, SelectV2GradientReducesUnknownShapes) {
  Graph g;
  Scope s(&g);
  Output c = ops::Placeholder(s.WithName("c"), DType::kBool);
  Output t = ops::Placeholder(s.WithName("t"), DType::kDouble);
  Output e = ops::Placeholder(s.WithName("e"), DType::kDouble);
  Output y = ops::SelectV2(s, c, t, e);
  auto grads = AddGradients(s, {y}, {t, e});
  ASSERT_TRUE(grads.ok()) << grads.status();
  auto session = Session::Create(g.ToGraphDef());
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  // c [2, 3], t [3] (a row), e scalar: dt[j] = #rows where c is true in column j.
  const Tensor cv = testing::ToTensor(testing::Values(Shape{2, 3}, {1, 0, 1, 1, 1, 0}), DType::kBool);
  const absl::Status run = (*session)->Run(
      {{"c", cv}, {"t", Tensor::FromVector<double>({1, 2, 3})}, {"e", Tensor::Scalar<double>(4)}},
      {(*grads)[0].name(), (*grads)[1].name()}, {}, &out);
  ASSERT_TRUE(run.ok()) << run;
  ASSERT_EQ(out[0].shape(), Shape{3});
  EXPECT_EQ(out[0].data<double>()[0], 2.0);
  EXPECT_EQ(out[0].data<double>()[1], 1.0);
  EXPECT_EQ(out[0].data<double>()[2], 1.0);
  ASSERT_EQ(out[1].shape(), Shape{});
  EXPECT_EQ(out[1].data<double>()[0], 2.0);
}

}  // namespace
}  // namespace gradserve
