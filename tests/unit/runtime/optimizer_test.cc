// The optimizer ops (graph/ops/optimizer_ops.cc) against a plain float64 loop:
// five steps with fresh random gradients, variables and slots compared after
// each; then the inputs each kernel must reject.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <map>
#include <thread>

#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "gtest/gtest.h"
#include "runtime/session.h"
#include "tests/unit/ops/op_test_util.h"
#include "tests/unit/runtime/optimizer_test_util.h"

namespace gradserve {
namespace {

using testing::FromTensor;
using ::testing::HasSubstr;
using testing::OptimizerInitialState;
using testing::OptimizerScalarNames;
using testing::OptimizerVariableNames;
using testing::Random;
using testing::RefTensor;
using testing::ToTensor;

// For each variable X of `op` (see OptimizerVariableNames): a VarHandleOp "X"
// of `shape`, an initializer "X_init" fed from "X_value" and a read "X_read".
// Scalars and "grad" are placeholders of unknown shape (so bad shapes reach the
// kernel); the optimizer step is "step".
std::unique_ptr<Graph> OptimizerGraph(const std::string& op, DType dtype, const Shape& shape,
                                      bool use_nesterov = false) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  std::map<std::string, Output> in;
  for (const std::string& name : OptimizerVariableNames(op)) {
    Output handle = ops::VarHandleOp(s.WithName(name), dtype, shape);
    ops::AssignVariableOp(s.WithName(name + "_init"), handle,
                          ops::Placeholder(s.WithName(name + "_value"), dtype, shape));
    ops::Identity(s.WithName(name + "_read"), ops::ReadVariableOp(s, handle, dtype));
    in[name] = handle;
  }
  for (const std::string& name : OptimizerScalarNames(op))
    in[name] = ops::Placeholder(s.WithName(name), dtype);
  Output grad = ops::Placeholder(s.WithName("grad"), dtype);
  const Scope step = s.WithName("step");
  if (op == "ResourceApplyGradientDescent") {
    ops::ResourceApplyGradientDescent(step, in["var"], in["alpha"], grad);
  } else if (op == "ResourceApplyMomentum") {
    ops::ResourceApplyMomentum(step, in["var"], in["accum"], in["lr"], grad, in["momentum"],
                               {.use_nesterov = use_nesterov});
  } else {
    ops::ResourceApplyAdam(step, in["var"], in["m"], in["v"], in["beta1_power"], in["beta2_power"],
                           in["lr"], in["beta1"], in["beta2"], in["epsilon"], grad,
                           {.use_nesterov = use_nesterov});
  }
  EXPECT_TRUE(s.ok()) << s.status();
  return graph;
}

std::unique_ptr<Session> MustCreate(std::unique_ptr<Graph> graph) {
  auto session = Session::Create(std::move(graph), {});
  EXPECT_TRUE(session.ok()) << session.status();
  return std::move(session).value();
}

// `x` as the dtype holds it, so the reference sees the kernel's operands.
double Rounded(double x, DType dtype) {
  return FromTensor(ToTensor(testing::Scalar(x), dtype)).v[0];
}

// The hyperparameters of step t (1-based), rounded to the dtype.
std::map<std::string, double> Hyperparameters(int t, DType dtype) {
  std::map<std::string, double> h = testing::OptimizerHyperparameters(t);
  for (auto& [name, value] : h) value = Rounded(value, dtype);
  return h;
}

// One step of `op` on float64 state (var, then slots), written plainly.
void ReferenceStep(const std::string& op, bool nesterov, std::map<std::string, double> h,
                   const RefTensor& grad, std::vector<RefTensor>& state) {
  for (int64_t i = 0; i < grad.size(); ++i) {
    const double g = grad.v[i];
    double& var = state[0].v[i];
    if (op == "ResourceApplyGradientDescent") {
      var -= h["alpha"] * g;
    } else if (op == "ResourceApplyMomentum") {
      double& accum = state[1].v[i];
      accum = accum * h["momentum"] + g;
      var -= nesterov ? g * h["lr"] + accum * h["momentum"] * h["lr"] : h["lr"] * accum;
    } else {
      double &m = state[1].v[i], &v = state[2].v[i];
      const double lr_t = h["lr"] * std::sqrt(1 - h["beta2_power"]) / (1 - h["beta1_power"]);
      m += (g - m) * (1 - h["beta1"]);
      v += (g * g - v) * (1 - h["beta2"]);
      const double direction = nesterov ? m * h["beta1"] + g * (1 - h["beta1"]) : m;
      var -= lr_t * direction / (std::sqrt(v) + h["epsilon"]);
    }
  }
}

void CheckFiveSteps(const std::string& op, DType dtype, bool nesterov = false) {
  SCOPED_TRACE(absl::StrCat(op, " ", DTypeName(dtype), nesterov ? " nesterov" : "", " seed ",
                            testing::Seed()));
  const Shape shape{3, 4};
  auto session = MustCreate(OptimizerGraph(op, dtype, shape, nesterov));
  const std::vector<std::string> names = OptimizerVariableNames(op);
  std::vector<RefTensor> state = OptimizerInitialState(op, shape);
  std::vector<Tensor> out;
  for (size_t i = 0; i < names.size(); ++i) {
    const Tensor value = ToTensor(state[i], dtype);
    state[i] = FromTensor(value);  // the reference starts from the rounded values
    ASSERT_TRUE(session->Run({{names[i] + "_value", value}}, {}, {names[i] + "_init"}, &out).ok());
  }
  // Relative to max(|want|, 1); half and bfloat16 round every intermediate.
  const double tolerance = dtype == DType::kDouble  ? 1e-12
                           : dtype == DType::kFloat ? 1e-5
                           : dtype == DType::kHalf  ? 1e-2
                                                    : 5e-2;
  for (int t = 1; t <= 5; ++t) {
    const Tensor grad = ToTensor(Random(shape), dtype);
    const std::map<std::string, double> h = Hyperparameters(t, dtype);
    FeedList feeds = {{"grad", grad}};
    for (const std::string& name : OptimizerScalarNames(op)) {
      feeds.push_back({name, ToTensor(testing::Scalar(h.at(name)), dtype)});
    }
    ASSERT_TRUE(session->Run(feeds, {}, {"step"}, &out).ok()) << "step " << t;
    ReferenceStep(op, nesterov, h, FromTensor(grad), state);
    for (size_t k = 0; k < names.size(); ++k) {
      ASSERT_TRUE(session->Run({}, {names[k] + "_read"}, {}, &out).ok());
      const RefTensor got = FromTensor(out[0]);
      ASSERT_EQ(got.shape, shape);
      for (int64_t i = 0; i < got.size(); ++i) {
        const double want = state[k].v[i];
        EXPECT_LE(std::abs(got.v[i] - want), tolerance * std::max(1.0, std::abs(want)))
            << names[k] << "[" << i << "] after step " << t << ": got " << got.v[i] << ", want "
            << want;
      }
    }
  }
}

TEST(OptimizerTest, GradientDescentMatchesReference) {
  CheckFiveSteps("ResourceApplyGradientDescent", DType::kDouble);
  CheckFiveSteps("ResourceApplyGradientDescent", DType::kFloat);
}

TEST(OptimizerTest, MomentumMatchesReference) {
  for (bool nesterov : {false, true}) {
    CheckFiveSteps("ResourceApplyMomentum", DType::kDouble, nesterov);
    CheckFiveSteps("ResourceApplyMomentum", DType::kFloat, nesterov);
  }
}

TEST(OptimizerTest, AdamMatchesReference) {
  for (bool nesterov : {false, true}) {
    CheckFiveSteps("ResourceApplyAdam", DType::kDouble, nesterov);
    CheckFiveSteps("ResourceApplyAdam", DType::kFloat, nesterov);
  }
}

TEST(OptimizerTest, HalfAndBfloat16StayNearReference) {
  for (const char* op :
       {"ResourceApplyGradientDescent", "ResourceApplyMomentum", "ResourceApplyAdam"}) {
    CheckFiveSteps(op, DType::kHalf);
    CheckFiveSteps(op, DType::kBFloat16);
  }
}

// A session over OptimizerGraph(op) with every variable initialized except
// `skip`, and feeds for one valid step.
struct Fixture {
  std::unique_ptr<Session> session;
  FeedList feeds;

  explicit Fixture(const std::string& op, const std::string& skip = "") {
    const Shape shape{3, 4};
    session = MustCreate(OptimizerGraph(op, DType::kDouble, shape));
    std::vector<Tensor> out;
    const std::vector<RefTensor> state = OptimizerInitialState(op, shape);
    const std::vector<std::string> names = OptimizerVariableNames(op);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == skip) continue;
      EXPECT_TRUE(session
                      ->Run({{names[i] + "_value", ToTensor(state[i], DType::kDouble)}}, {},
                            {names[i] + "_init"}, &out)
                      .ok());
    }
    feeds = {{"grad", ToTensor(Random(shape), DType::kDouble)}};
    for (const auto& [name, value] : Hyperparameters(1, DType::kDouble)) {
      for (const std::string& used : OptimizerScalarNames(op)) {
        if (used == name) feeds.push_back({name, Tensor::Scalar<double>(value)});
      }
    }
  }
  void Replace(const std::string& name, Tensor value) {
    for (auto& [feed, tensor] : feeds) {
      if (feed == name) tensor = std::move(value);
    }
  }
  absl::Status Step() {
    std::vector<Tensor> out;
    return session->Run(feeds, {}, {"step"}, &out);
  }
  RefTensor Read(const std::string& name) {
    std::vector<Tensor> out;
    EXPECT_TRUE(session->Run({}, {name + "_read"}, {}, &out).ok());
    return FromTensor(out[0]);
  }
};

const char* const kOps[] = {"ResourceApplyGradientDescent", "ResourceApplyMomentum",
                            "ResourceApplyAdam"};

TEST(OptimizerTest, RejectsNonScalarHyperparameters) {
  for (const char* op : kOps) {
    for (const std::string& scalar : OptimizerScalarNames(op)) {
      SCOPED_TRACE(absl::StrCat(op, " ", scalar));
      Fixture f(op);
      f.Replace(scalar, Tensor::FromVector<double>({0.1, 0.2}));
      absl::Status st = f.Step();
      EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(st.message(), HasSubstr(scalar + " must be a scalar"));
    }
  }
}

TEST(OptimizerTest, RejectsGradientOfAnotherShapeAndLeavesStateUnchanged) {
  for (const char* op : kOps) {
    SCOPED_TRACE(op);
    Fixture f(op);
    std::vector<RefTensor> before;
    for (const std::string& name : OptimizerVariableNames(op)) before.push_back(f.Read(name));
    f.Replace("grad", ToTensor(Random(Shape{4, 3}), DType::kDouble));
    absl::Status st = f.Step();
    EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(st.message(), HasSubstr("[3,4]"));
    EXPECT_THAT(st.message(), HasSubstr("[4,3]"));
    for (size_t k = 0; k < before.size(); ++k) {
      EXPECT_EQ(f.Read(OptimizerVariableNames(op)[k]).v, before[k].v)
          << OptimizerVariableNames(op)[k];
    }
  }
}

TEST(OptimizerTest, RejectsUninitializedVariablesNamingThem) {
  for (const char* op : kOps) {
    for (const std::string& skip : OptimizerVariableNames(op)) {
      SCOPED_TRACE(absl::StrCat(op, " without ", skip));
      Fixture f(op, skip);
      absl::Status st = f.Step();
      EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
      EXPECT_THAT(st.message(), HasSubstr("'" + skip + "'"));
    }
  }
}

TEST(OptimizerTest, ShapeFunctionRejectsKnownBadShapes) {
  Graph graph;
  Scope s(&graph);
  Output var = ops::VarHandleOp(s.WithName("var"), DType::kFloat, Shape{3, 4});
  Output grad = ops::Const(s, std::vector<float>(12, 1.0f), Shape{3, 4});
  ops::ResourceApplyGradientDescent(s, var, ops::Const(s, std::vector<float>{1, 2}, Shape{2}),
                                    grad);
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.status().message(), HasSubstr("alpha must be a scalar"));

  Graph graph2;
  Scope s2(&graph2);
  Output var2 = ops::VarHandleOp(s2.WithName("var"), DType::kFloat, Shape{3, 4});
  Output accum = ops::VarHandleOp(s2.WithName("accum"), DType::kFloat, Shape{4, 3});
  ops::ResourceApplyMomentum(s2, var2, accum, ops::Const(s2, 0.1f),
                             ops::Const(s2, std::vector<float>(12, 1.0f), Shape{3, 4}),
                             ops::Const(s2, 0.9f));
  EXPECT_EQ(s2.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s2.status().message(), HasSubstr("accum shape [4,3]"));
}

TEST(OptimizerTest, RejectsTheSameVariableAsTwoInputs) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output var = ops::VarHandleOp(s.WithName("var"), DType::kDouble, Shape{2});
  ops::AssignVariableOp(s.WithName("init"), var,
                        ops::Const(s, std::vector<double>{1, 2}, Shape{2}));
  ops::ResourceApplyMomentum(s.WithName("step"), var, var, ops::Const(s, 0.1),
                             ops::Const(s, std::vector<double>{1, 1}, Shape{2}),
                             ops::Const(s, 0.9));
  ASSERT_TRUE(s.ok()) << s.status();
  auto session = MustCreate(std::move(graph));
  std::vector<Tensor> out;
  ASSERT_TRUE(session->Run({}, {}, {"init"}, &out).ok());
  absl::Status st = session->Run({}, {}, {"step"}, &out);
  EXPECT_EQ(st.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr("same variable"));
}

// Two steps lock the same two variables in opposite input order ("a" as var
// and "b" as accum, and the reverse); run concurrently they must not deadlock
// (Note [Optimizer locking]).
TEST(OptimizerTest, ConcurrentStepsOnSharedVariablesDoNotDeadlock) {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output a = ops::VarHandleOp(s.WithName("a"), DType::kFloat, Shape{64});
  Output b = ops::VarHandleOp(s.WithName("b"), DType::kFloat, Shape{64});
  Output zeros = ops::Const(s, std::vector<float>(64, 0.0f), Shape{64});
  ops::AssignVariableOp(s.WithName("init_a"), a, zeros);
  ops::AssignVariableOp(s.WithName("init_b"), b, zeros);
  ops::Identity(s.WithName("a_read"), ops::ReadVariableOp(s, a, DType::kFloat));
  ops::Identity(s.WithName("b_read"), ops::ReadVariableOp(s, b, DType::kFloat));
  Output ones = ops::Const(s, std::vector<float>(64, 1.0f), Shape{64});
  ops::ResourceApplyMomentum(s.WithName("step_ab"), a, b, ops::Const(s, 0.5f), ones,
                             ops::Const(s, 0.0f));
  ops::ResourceApplyMomentum(s.WithName("step_ba"), b, a, ops::Const(s, 0.5f), ones,
                             ops::Const(s, 0.0f));
  ASSERT_TRUE(s.ok()) << s.status();
  auto session = Session::Create(std::move(graph), {.inter_op_threads = 4});
  ASSERT_TRUE(session.ok()) << session.status();
  std::vector<Tensor> out;
  ASSERT_TRUE((*session)->Run({}, {}, {"init_a", "init_b"}, &out).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const std::string target = t % 2 == 0 ? "step_ab" : "step_ba";
      for (int r = 0; r < 200; ++r) {
        std::vector<Tensor> local;
        if (!(*session)->Run({}, {}, {target}, &local).ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  // The steps ran one at a time: the last one set its accum to exactly 1.
  ASSERT_TRUE((*session)->Run({}, {"a_read", "b_read"}, {}, &out).ok());
  EXPECT_EQ(std::max(out[0].data<float>()[0], out[1].data<float>()[0]), 1.0f);
}

}  // namespace
}  // namespace gradserve
