// Math and reduction gradients on inputs whose shapes are unknown while the graph
// is built: the run-time path (Shape, BroadcastGradientArgs, Sum, Reshape) must
// give the same gradients as the build-time path the gradient checks exercise.
#include <functional>

#include "absl/strings/str_cat.h"
#include "autodiff/gradients.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve::testing {
namespace {

// Builds f(inputs) and d(sum <W, f>)/d(inputs) on placeholders of exact or of
// unknown shape (axes stay Consts), runs it, and returns the gradients.
using Builder = std::function<Output(const Scope&, const std::vector<Output>&)>;

absl::StatusOr<std::vector<RefTensor>> Gradients(const Builder& f, const std::vector<RefTensor>& in,
                                                 const RefTensor& w, bool known_shapes) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  std::vector<Output> xs;
  FeedList feeds;
  for (size_t i = 0; i < in.size(); ++i) {
    const std::string name = absl::StrCat("x", i);
    xs.push_back(ops::Placeholder(s.WithName(name), DType::kDouble,
                                  known_shapes ? in[i].shape : Shape::UnknownRank()));
    feeds.emplace_back(name + ":0", ToTensor(in[i], DType::kDouble));
  }
  const Output y = f(s, xs);
  const Output seed = ops::Const(s, ToTensor(w, DType::kDouble));
  absl::StatusOr<std::vector<Output>> grads = AddGradients(s, {y}, xs, {seed});
  if (!grads.ok()) return grads.status();
  std::vector<std::string> fetches;
  for (const Output& g : *grads) fetches.push_back(g.name());
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(std::move(graph), {});
  if (!session.ok()) return session.status();
  std::vector<Tensor> out;
  absl::Status status = (*session)->Run(feeds, fetches, {}, &out);
  if (!status.ok()) return status;
  std::vector<RefTensor> result;
  for (const Tensor& t : out) result.push_back(FromTensor(t));
  return result;
}

void ExpectSameGradients(const Builder& f, const std::vector<RefTensor>& in,
                         const Shape& out_shape) {
  const RefTensor w = Random(out_shape);
  absl::StatusOr<std::vector<RefTensor>> known = Gradients(f, in, w, true);
  absl::StatusOr<std::vector<RefTensor>> unknown = Gradients(f, in, w, false);
  ASSERT_TRUE(known.ok()) << known.status();
  ASSERT_TRUE(unknown.ok()) << unknown.status();
  ASSERT_EQ(known->size(), unknown->size());
  for (size_t i = 0; i < known->size(); ++i) {
    EXPECT_EQ((*known)[i].shape, (*unknown)[i].shape) << "input " << i;
    ASSERT_EQ((*known)[i].v.size(), (*unknown)[i].v.size());
    for (size_t j = 0; j < (*known)[i].v.size(); ++j) {
      EXPECT_NEAR((*known)[i].v[j], (*unknown)[i].v[j], 1e-12) << "input " << i << " element " << j;
    }
  }
}

Output Axes(const Scope& s, std::vector<int32_t> axes) {
  const int64_t n = static_cast<int64_t>(axes.size());
  return ops::Const(s, axes, Shape{n});
}

TEST(MathGradUnknownShapeTest, BroadcastBinaryOpsMatchKnownShapes) {
  SCOPED_TRACE(absl::StrCat("seed ", Seed()));
  const std::vector<RefTensor> in = {Random(Shape{2, 1, 3}), Random(Shape{4, 1}, 0.5, 1.0)};
  for (auto op : {ops::Add, ops::Sub, ops::Mul, ops::RealDiv, ops::Maximum}) {
    ExpectSameGradients(
        [op](const Scope& s, const std::vector<Output>& x) { return op(s, x[0], x[1]); }, in,
        Shape{2, 4, 3});
  }
}

TEST(MathGradUnknownShapeTest, BatchMatMulBatchBroadcastMatchesKnownShapes) {
  SCOPED_TRACE(absl::StrCat("seed ", Seed()));
  ExpectSameGradients(
      [](const Scope& s, const std::vector<Output>& x) {
        return ops::BatchMatMulV2(s, x[0], x[1]);
      },
      {Random(Shape{2, 1, 3, 4}), Random(Shape{3, 4, 5})}, Shape{2, 3, 3, 5});
}

TEST(ReductionGradUnknownShapeTest, ReductionsMatchKnownShapes) {
  SCOPED_TRACE(absl::StrCat("seed ", Seed()));
  const std::vector<RefTensor> in = {Random(Shape{2, 3, 5})};
  using Reduce = Output (*)(const Scope&, Output, Output, const ops::ReduceAttrs&);
  for (Reduce op : {&ops::Sum, &ops::Mean, &ops::Max, &ops::Min}) {
    for (bool keep : {false, true}) {
      ExpectSameGradients(
          [op, keep](const Scope& s, const std::vector<Output>& x) {
            return op(s, x[0], Axes(s, {0, -1}), {.keep_dims = keep});
          },
          in, keep ? Shape{1, 3, 1} : Shape{3});
    }
  }
}

TEST(MathGradTest, MaximumAndMinimumTiesGoToX) {
  const RefTensor v = Values(Shape{3}, {0.5, -0.25, 1.0});
  for (auto op : {ops::Maximum, ops::Minimum}) {
    absl::StatusOr<std::vector<RefTensor>> g =
        Gradients([op](const Scope& s, const std::vector<Output>& x) { return op(s, x[0], x[1]); },
                  {v, v}, Values(Shape{3}, {1, 2, 3}), true);
    ASSERT_TRUE(g.ok()) << g.status();
    EXPECT_EQ((*g)[0].v, (std::vector<double>{1, 2, 3}));
    EXPECT_EQ((*g)[1].v, (std::vector<double>{0, 0, 0}));
  }
}

TEST(MathGradTest, CastToIntegerIsNotDifferentiable) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  const Output x = ops::Placeholder(s, DType::kDouble, Shape{3});
  const Output y = ops::Cast(s, ops::Cast(s, x, DType::kInt32), DType::kDouble);
  absl::StatusOr<std::vector<Output>> grads = AddGradients(s, {y}, {x});
  ASSERT_TRUE(grads.ok()) << grads.status();
  EXPECT_FALSE((*grads)[0].valid());
}

}  // namespace
}  // namespace gradserve::testing
