#include "runtime/session.h"

#include <thread>

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;
using testing::FromTensor;
using testing::Random;
using testing::ToTensor;

std::unique_ptr<Session> MustCreate(std::unique_ptr<Graph> graph, SessionOptions options = {}) {
  auto session = Session::Create(std::move(graph), options);
  EXPECT_TRUE(session.ok()) << session.status();
  return std::move(session).value();
}

TEST(SessionTest, RunsMatMulPlusBias) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 2});
  Output w = ops::Const(s.WithName("w"), std::vector<float>{1, 2, 3, 4, 5, 6}, Shape{2, 3});
  Output b = ops::Const(s.WithName("b"), std::vector<float>{0.5f, -1, 2}, Shape{3});
  ops::AddV2(s.WithName("y"), ops::MatMul(s, x, w), b);
  ASSERT_TRUE(s.ok()) << s.status();
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  Tensor xv = Tensor::FromVector<float>({1, 1, 2, -1}, Shape{2, 2});
  ASSERT_TRUE(session->Run({{"x:0", xv}}, {"y:0"}, {}, &out).ok());
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
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  absl::Status st = session->Run({}, {"y:0"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("'x'"));
}

TEST(SessionTest, PrunesUnfedPlaceholdersOutsideTheFetchedSubgraph) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output a = ops::Placeholder(s.WithName("a"), DType::kFloat, Shape{2});
  Output unused = ops::Placeholder(s.WithName("unused"), DType::kFloat, Shape{2});
  ops::AddV2(s.WithName("other"), unused, unused);
  ops::AddV2(s.WithName("y"), a, a);
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  ASSERT_TRUE(
      session->Run({{"a", Tensor::FromVector<float>({1, 2})}}, {"y"}, {}, &out).ok());
  EXPECT_EQ(out[0].data<float>()[1], 4.0f);
}

TEST(SessionTest, FeedingAnInnerTensorCutsItsProducers) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output a = ops::Placeholder(s.WithName("a"), DType::kFloat, Shape{2});
  Output mid = ops::AddV2(s.WithName("mid"), a, a);
  ops::AddV2(s.WithName("y"), mid, mid);
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  ASSERT_TRUE(session->Run({{"mid:0", Tensor::FromVector<float>({1, -1})}}, {"y"}, {}, &out).ok());
  EXPECT_EQ(out[0].data<float>()[0], 2.0f);
}

TEST(SessionTest, RejectsBadFeedsAndFetches) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output a = ops::Placeholder(s.WithName("a"), DType::kFloat, Shape{-1, 2});
  ops::Identity(s.WithName("y"), a);
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  absl::Status st = session->Run({{"a", Tensor::FromVector<int32_t>({1, 2}, Shape{1, 2})}},
                                 {"y"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("int32"));
  st = session->Run({{"a", Tensor::FromVector<float>({1, 2, 3})}}, {"y"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("shape [3]"));
  st = session->Run({}, {"nope:0"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kNotFound);
  st = session->Run({}, {"y:7"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

// Builds v (a [2,3] variable), an initializer, and a step that adds 1 to it.
struct VariableGraph {
  std::unique_ptr<Graph> graph = std::make_unique<Graph>();
  VariableGraph() {
    Scope s(graph.get());
    Output v = ops::VarHandleOp(s.WithName("v"), DType::kFloat, Shape{2, 3});
    Output init = ops::Placeholder(s.WithName("init_value"), DType::kFloat, Shape{2, 3});
    ops::AssignVariableOp(s.WithName("init"), v, init);
    ops::AssignAddVariableOp(s.WithName("step"), v,
                             ops::Const(s, std::vector<float>(6, 1.0f), Shape{2, 3}));
    ops::Identity(s.WithName("read"), ops::ReadVariableOp(s, v, DType::kFloat));
    ops::VarIsInitializedOp(s.WithName("is_init"), v);
    EXPECT_TRUE(s.ok()) << s.status();
  }
};

TEST(VariablesTest, PersistAcrossRunsAndUpdateInPlace) {
  VariableGraph vg;
  auto session = MustCreate(std::move(vg.graph));
  std::vector<Tensor> out;
  ASSERT_TRUE(session->Run({}, {"is_init"}, {}, &out).ok());
  EXPECT_FALSE(out[0].scalar<bool>());
  absl::Status st = session->Run({}, {"read"}, {}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(st.message(), HasSubstr("'v'"));

  const auto init = Random(Shape{2, 3});
  ASSERT_TRUE(session->Run({{"init_value", ToTensor(init, DType::kFloat)}}, {}, {"init"}, &out).ok());
  ASSERT_TRUE(session->Run({}, {"read"}, {}, &out).ok());
  Tensor snapshot = out[0];
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(session->Run({}, {}, {"step"}, &out).ok());
  ASSERT_TRUE(session->Run({}, {"read"}, {}, &out).ok());
  const auto after = FromTensor(out[0]);
  const auto before = FromTensor(snapshot);
  for (int i = 0; i < 6; ++i) {
    EXPECT_NEAR(after.v[i], static_cast<float>(init.v[i]) + 3.0, 1e-6);
    // A snapshot taken before the updates keeps its value (copy-on-write).
    EXPECT_EQ(before.v[i], static_cast<float>(init.v[i]));
  }
}

TEST(VariablesTest, AssignRejectsWrongShape) {
  VariableGraph vg;
  auto session = MustCreate(std::move(vg.graph));
  std::vector<Tensor> out;
  // The placeholder is [2,3]; feeding [3,2] is refused before any kernel runs.
  absl::Status st = session->Run({{"init_value", Tensor(DType::kFloat, Shape{3, 2})}}, {}, {"init"},
                                 &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
}

TEST(SessionTest, FailingKernelStopsTheRunAndNamesTheNode) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output v = ops::VarHandleOp(s.WithName("counter"), DType::kFloat, Shape{});
  ops::AssignVariableOp(s.WithName("init"), v, ops::Const(s, 0.0f));
  Output a = ops::Placeholder(s.WithName("a"), DType::kFloat, Shape::UnknownRank());
  Output b = ops::Placeholder(s.WithName("b"), DType::kFloat, Shape::UnknownRank());
  Output bad = ops::MatMul(s.WithName("bad_matmul"), a, b);
  // Runs only after bad_matmul succeeded; it must never run.
  ops::AssignAddVariableOp(s.WithName("after").WithControlDependencies({bad}), v,
                           ops::Const(s, 1.0f));
  ops::Identity(s.WithName("read"), ops::ReadVariableOp(s, v, DType::kFloat));
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  ASSERT_TRUE(session->Run({}, {}, {"init"}, &out).ok());
  absl::Status st = session->Run({{"a", Tensor(DType::kFloat, Shape{2, 3})},
                                  {"b", Tensor(DType::kFloat, Shape{2, 3})}},
                                 {}, {"after"}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("bad_matmul"));
  ASSERT_TRUE(session->Run({}, {"read"}, {}, &out).ok());
  EXPECT_EQ(out[0].scalar<float>(), 0.0f);
}

// A wide graph: 6 independent MatMul branches summed, run with an inter-op pool.
std::unique_ptr<Graph> WideGraph(const std::vector<testing::RefTensor>& weights) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 32});
  Output sum;
  for (size_t i = 0; i < weights.size(); ++i) {
    Output y = ops::MatMul(s, x, ops::Const(s, ToTensor(weights[i], DType::kFloat)));
    sum = sum.valid() ? ops::AddV2(s, sum, y) : y;
  }
  ops::Identity(s.WithName("out"), sum);
  return graph;
}

TEST(SessionTest, ConcurrentRunsMatchSingleThreadedResults) {
  std::vector<testing::RefTensor> weights;
  for (int i = 0; i < 6; ++i) weights.push_back(Random(Shape{32, 16}));
  auto serial = MustCreate(WideGraph(weights), {.intra_op_threads = 1, .inter_op_threads = 1});
  auto shared = MustCreate(WideGraph(weights), {.intra_op_threads = 2, .inter_op_threads = 4});

  constexpr int kThreads = 8, kRuns = 25;
  std::vector<std::vector<Tensor>> inputs(kThreads), expected(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    for (int r = 0; r < kRuns; ++r) {
      inputs[t].push_back(ToTensor(Random(Shape{1 + (t + r) % 9, 32}), DType::kFloat));
      std::vector<Tensor> out;
      ASSERT_TRUE(serial->Run({{"x", inputs[t][r]}}, {"out"}, {}, &out).ok());
      expected[t].push_back(out[0]);
    }
  }
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0}, failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int r = 0; r < kRuns; ++r) {
        std::vector<Tensor> out;
        if (!shared->Run({{"x", inputs[t][r]}}, {"out"}, {}, &out).ok()) {
          ++failures;
          continue;
        }
        const auto got = FromTensor(out[0]), want = FromTensor(expected[t][r]);
        for (int64_t i = 0; i < got.size(); ++i) {
          if (std::abs(got.v[i] - want.v[i]) > 1e-4 * std::max(1.0, std::abs(want.v[i]))) {
            ++mismatches;
            break;
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(mismatches.load(), 0);
}

}  // namespace
}  // namespace gradserve
