// Trainer and BuildTrainGraph: every optimizer (with clipping and weight decay)
// on a linear least-squares model whose gradient is known in closed form,
// checked step by step against a float64 plain-loop reference; checkpointed
// optimizer state; and the rejections.
#include "runtime/trainer.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/example_models.h"
#include "gtest/gtest.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;
using testing::RefTensor;

constexpr int64_t kN = 7, kD = 5, kK = 3;

void SetInfo(Output out, TensorInfo* info) {
  info->set_name(out.name());
  info->set_dtype(static_cast<DataType>(out.dtype()));
  out.shape().ToProto(info->mutable_tensor_shape());
}

// pred = x @ w + b; loss = mean((pred - y)^2), the mean squared error composed
// from ops. Writes it to `dir` with w, b = `w0`, `b0`.
void WriteLinearModel(const std::string& dir, const RefTensor& w0, const RefTensor& b0,
                      bool with_loss = true) {
  Graph graph;
  Scope s(&graph);
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, kD});
  Output y = ops::Placeholder(s.WithName("y"), DType::kFloat, Shape{-1, kK});
  Output w = ops::VarHandleOp(s.WithName("w"), DType::kFloat, Shape{kD, kK});
  Output b = ops::VarHandleOp(s.WithName("b"), DType::kFloat, Shape{kK});
  Output pred = ops::AddV2(s.WithName("pred"),
                           ops::MatMul(s, x, ops::ReadVariableOp(s, w, DType::kFloat)),
                           ops::ReadVariableOp(s, b, DType::kFloat));
  Output loss = ops::Mean(s.WithName("mse"), ops::Square(s, ops::Sub(s, pred, y)),
                          ops::Const(s, std::vector<int32_t>{0, 1}, Shape{2}));
  ASSERT_TRUE(s.ok()) << s.status();
  SavedModel proto;
  *proto.mutable_graph_def() = graph.ToGraphDef();
  proto.add_variables("w");
  proto.add_variables("b");
  SignatureDef& serving = (*proto.mutable_signature_def())[kServingSignatureKey];
  SetInfo(x, &(*serving.mutable_inputs())["x"]);
  SetInfo(pred, &(*serving.mutable_outputs())["pred"]);
  SignatureDef& train = (*proto.mutable_signature_def())[kTrainSignatureKey];
  SetInfo(x, &(*train.mutable_inputs())["x"]);
  SetInfo(y, &(*train.mutable_inputs())["y"]);
  train.add_label_keys("y");
  if (with_loss) SetInfo(loss, &(*train.mutable_outputs())["loss"]);
  train.add_trainable_variables("w");
  train.add_trainable_variables("b");
  ASSERT_TRUE(WriteSavedModel(dir, proto,
                              {{"w", testing::ToTensor(w0, DType::kFloat)},
                               {"b", testing::ToTensor(b0, DType::kFloat)}})
                  .ok());
}

// The float64 reference: parameters p = (w row-major, b), optimizer state, and
// one step on (x, y) as the optimizers' documented update rules state them.
struct Reference {
  OptimizerConfig config;
  std::vector<double> p, slot1, slot2;
  int64_t step = 0;

  // Returns the loss before the update.
  double Step(const RefTensor& x, const RefTensor& y) {
    const double* w = p.data();
    const double* b = p.data() + kD * kK;
    std::vector<double> g(p.size(), 0.0);
    double loss = 0;
    const double scale = 2.0 / (kN * kK);
    for (int64_t n = 0; n < kN; ++n) {
      for (int64_t k = 0; k < kK; ++k) {
        double e = b[k] - y.v[n * kK + k];
        for (int64_t d = 0; d < kD; ++d) e += x.v[n * kD + d] * w[d * kK + k];
        loss += e * e / (kN * kK);
        for (int64_t d = 0; d < kD; ++d) g[d * kK + k] += scale * x.v[n * kD + d] * e;
        g[kD * kK + k] += scale * e;
      }
    }
    if (config.clip_global_norm > 0) {
      double sq = 0;
      for (double v : g) sq += v * v;
      const double c = config.clip_global_norm;
      for (double& v : g) v *= c / std::max(std::sqrt(sq), c);
    }
    slot1.resize(p.size(), 0.0);
    slot2.resize(p.size(), 0.0);
    const double lr = config.learning_rate;
    const int64_t t = step + 1;
    const double lr_t = lr * std::sqrt(1 - std::pow(config.beta2, t)) /
                        (1 - std::pow(config.beta1, t));
    for (size_t i = 0; i < p.size(); ++i) {
      switch (config.kind) {
        case OptimizerKind::kSgd:
          p[i] -= lr * g[i];
          break;
        case OptimizerKind::kMomentum:
          slot1[i] = slot1[i] * config.momentum + g[i];
          p[i] -= config.use_nesterov ? lr * g[i] + lr * config.momentum * slot1[i]
                                      : lr * slot1[i];
          break;
        case OptimizerKind::kAdamW:
          p[i] -= lr * config.weight_decay * p[i];
          [[fallthrough]];
        case OptimizerKind::kAdam:
          slot1[i] = config.beta1 * slot1[i] + (1 - config.beta1) * g[i];
          slot2[i] = config.beta2 * slot2[i] + (1 - config.beta2) * g[i] * g[i];
          p[i] -= lr_t * slot1[i] / (std::sqrt(slot2[i]) + config.epsilon);
          break;
      }
    }
    ++step;
    return loss;
  }
};

class TrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/trainer_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    w0_ = testing::Random(Shape{kD, kK});
    b0_ = testing::Random(Shape{kK});
    WriteLinearModel(dir_ + "/1", w0_, b0_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Reference MakeReference(const OptimizerConfig& config) const {
    Reference r{.config = config, .p = w0_.v, .slot1 = {}, .slot2 = {}, .step = 0};
    r.p.insert(r.p.end(), b0_.v.begin(), b0_.v.end());
    return r;
  }

  // The trainer's parameters as (w, b) flattened like Reference::p.
  static std::vector<double> Params(Trainer& trainer) {
    std::vector<double> p = testing::FromTensor(*ReadVariable(trainer.session(), "w")).v;
    std::vector<double> b = testing::FromTensor(*ReadVariable(trainer.session(), "b")).v;
    p.insert(p.end(), b.begin(), b.end());
    return p;
  }

  // Runs `steps` steps on fresh random batches with both and compares the loss
  // and every parameter after each step.
  // `two_phase`: through ComputeStep and ApplyStep instead of Step.
  void ExpectMatchesReference(Trainer& trainer, Reference& ref, int steps,
                              bool two_phase = false) {
    for (int i = 0; i < steps; ++i) {
      RefTensor x = testing::Random(Shape{kN, kD}, -2, 2);
      RefTensor y = testing::Random(Shape{kN, kK}, -2, 2);
      const double want_loss = ref.Step(x, y);
      absl::StatusOr<StepResult> r;
      Tensor xt = testing::ToTensor(x, DType::kFloat), yt = testing::ToTensor(y, DType::kFloat);
      if (two_phase) {
        absl::StatusOr<PendingStep> pending = trainer.ComputeStep({{"x", xt}, {"y", yt}});
        ASSERT_TRUE(pending.ok()) << pending.status();
        EXPECT_TRUE(pending->finite());
        absl::StatusOr<int64_t> step = trainer.ApplyStep(*pending);
        ASSERT_TRUE(step.ok()) << step.status();
        r = StepResult{.loss = pending->loss, .global_norm = pending->global_norm, .step = *step};
      } else {
        r = trainer.Step(xt, yt);
      }
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_NEAR(r->loss, want_loss, 1e-5 * std::max(1.0, want_loss)) << "step " << i;
      EXPECT_EQ(r->step, ref.step);
      const std::vector<double> got = Params(trainer);
      ASSERT_EQ(got.size(), ref.p.size());
      for (size_t j = 0; j < got.size(); ++j) {
        ASSERT_NEAR(got[j], ref.p[j], 2e-5 * std::max(1.0, std::abs(ref.p[j])))
            << "step " << i << " parameter " << j;
      }
    }
  }

  std::string dir_;
  RefTensor w0_, b0_;
};

TEST_F(TrainerTest, SgdMatchesReference) {
  OptimizerConfig c{.kind = OptimizerKind::kSgd, .learning_rate = 0.05};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 5);
}

TEST_F(TrainerTest, MomentumMatchesReference) {
  for (bool nesterov : {false, true}) {
    OptimizerConfig c{.kind = OptimizerKind::kMomentum, .learning_rate = 0.03, .momentum = 0.8,
                      .use_nesterov = nesterov};
    auto trainer = Trainer::Load(dir_ + "/1", c);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    Reference ref = MakeReference(c);
    ExpectMatchesReference(**trainer, ref, 5);
  }
}

TEST_F(TrainerTest, AdamMatchesReferenceWithBiasCorrection) {
  OptimizerConfig c{.kind = OptimizerKind::kAdam, .learning_rate = 0.02};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 6);
}

TEST_F(TrainerTest, AdamWDecaysDecoupledFromTheGradient) {
  OptimizerConfig c{.kind = OptimizerKind::kAdamW, .learning_rate = 0.02, .weight_decay = 0.5};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 5);
}

TEST_F(TrainerTest, ClipByGlobalNormScalesEveryGradient) {
  // A clip far below the gradients' norm, so every step is clipped.
  OptimizerConfig c{.kind = OptimizerKind::kSgd, .learning_rate = 0.1, .clip_global_norm = 0.05};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 4);
  c.kind = OptimizerKind::kAdam;
  trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 4);
}

TEST_F(TrainerTest, ReportsTheGlobalNormBeforeClipping) {
  OptimizerConfig c{.kind = OptimizerKind::kSgd, .learning_rate = 0.1, .clip_global_norm = 1e-3};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  RefTensor x = testing::Random(Shape{kN, kD}, -2, 2);
  RefTensor y = testing::Random(Shape{kN, kK}, -2, 2);
  Reference ref = MakeReference({.kind = OptimizerKind::kSgd, .learning_rate = 1.0});
  std::vector<double> before = ref.p;
  ref.Step(x, y);  // lr 1, no clip: p moves by exactly the gradient
  double sq = 0;
  for (size_t i = 0; i < before.size(); ++i) sq += (before[i] - ref.p[i]) * (before[i] - ref.p[i]);
  auto r = (*trainer)->Step(testing::ToTensor(x, DType::kFloat), testing::ToTensor(y, DType::kFloat));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->global_norm, std::sqrt(sq), 1e-5 * std::sqrt(sq));
}

TEST_F(TrainerTest, SavedOptimizerStateResumesExactly) {
  // 3 steps, save, load, 3 more == 6 steps straight (Adam's moments and
  // global_step come back from the checkpoint).
  OptimizerConfig c{.kind = OptimizerKind::kAdam, .learning_rate = 0.02};
  auto first = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(first.ok()) << first.status();
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**first, ref, 3);
  ASSERT_TRUE((*first)->Save(dir_ + "/2").ok());
  auto second = Trainer::Load(dir_ + "/2", c);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->step(), 3);
  ExpectMatchesReference(**second, ref, 3);

  // The saved model is still a plain model: it loads and serves without training.
  auto bundle = LoadSavedModel(dir_ + "/2");
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->step, 3);
  EXPECT_TRUE(bundle->extra_state.contains("w/Adam"));
  EXPECT_TRUE(bundle->extra_state.contains("global_step"));
  EXPECT_EQ(bundle->session->graph().FindNode("train/step"), nullptr);
}

TEST_F(TrainerTest, TwoPhaseStepMatchesReference) {
  // The server's split step (gradients computed, then fed to the update) is
  // the same step, clipping included, for every optimizer.
  for (OptimizerKind kind : {OptimizerKind::kSgd, OptimizerKind::kMomentum, OptimizerKind::kAdam,
                             OptimizerKind::kAdamW}) {
    OptimizerConfig c{.kind = kind, .learning_rate = 0.02, .clip_global_norm = 0.5};
    auto trainer = Trainer::Load(dir_ + "/1", c);
    ASSERT_TRUE(trainer.ok()) << trainer.status();
    Reference ref = MakeReference(c);
    ExpectMatchesReference(**trainer, ref, 4, /*two_phase=*/true);
  }
}

TEST_F(TrainerTest, RestoreStateReturnsToASnapshot) {
  OptimizerConfig c{.kind = OptimizerKind::kAdam, .learning_rate = 0.05};
  auto trainer = Trainer::Load(dir_ + "/1", c);
  ASSERT_TRUE(trainer.ok());
  Reference ref = MakeReference(c);
  ExpectMatchesReference(**trainer, ref, 2);
  auto snapshot = (*trainer)->StateTensors();
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  // Copies: the variables' buffers change in place as training goes on.
  std::map<std::string, Tensor> saved;
  for (const auto& [name, t] : *snapshot) saved.emplace(name, t.DeepCopy());
  Reference at_snapshot = ref;
  ExpectMatchesReference(**trainer, ref, 3);
  ASSERT_TRUE((*trainer)->RestoreState(saved).ok());
  EXPECT_EQ((*trainer)->step(), 2);
  ExpectMatchesReference(**trainer, at_snapshot, 2);

  saved.erase("w/Adam_1");
  auto missing = (*trainer)->RestoreState(saved);
  EXPECT_EQ(missing.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(missing.message(), HasSubstr("no value for variable 'w/Adam_1'"));
  saved["w/Adam_1"] = testing::ToTensor(testing::Random(Shape{kD + 1, kK}), DType::kFloat);
  EXPECT_THAT((*trainer)->RestoreState(saved).message(),
              HasSubstr("variable 'w/Adam_1' is float"));
}

TEST_F(TrainerTest, OptimizerStateOfAnotherOptimizerIsNotReused) {
  OptimizerConfig adam{.kind = OptimizerKind::kAdam, .learning_rate = 0.02};
  auto first = Trainer::Load(dir_ + "/1", adam);
  ASSERT_TRUE(first.ok());
  Reference warm = MakeReference(adam);
  ExpectMatchesReference(**first, warm, 2);
  ASSERT_TRUE((*first)->Save(dir_ + "/2").ok());
  // Momentum starts with a zero accumulator from the Adam-trained weights.
  OptimizerConfig momentum{.kind = OptimizerKind::kMomentum, .learning_rate = 0.03};
  auto second = Trainer::Load(dir_ + "/2", momentum);
  ASSERT_TRUE(second.ok()) << second.status();
  Reference ref{.config = momentum, .p = warm.p, .slot1 = {}, .slot2 = {}, .step = 2};
  ExpectMatchesReference(**second, ref, 2);
}

TEST_F(TrainerTest, ServingSeesTheUpdatedWeights) {
  auto trainer = Trainer::Load(dir_ + "/1", {.kind = OptimizerKind::kSgd, .learning_rate = 0.1});
  ASSERT_TRUE(trainer.ok());
  Tensor x = testing::ToTensor(testing::Random(Shape{kN, kD}), DType::kFloat);
  Tensor y = testing::ToTensor(testing::Random(Shape{kN, kK}), DType::kFloat);
  auto before = RunSignature((*trainer)->bundle(), kServingSignatureKey, {{"x", x}});
  ASSERT_TRUE(before.ok());
  double prev = (*(*trainer)->Step(x, y)).loss;
  for (int i = 0; i < 20; ++i) {
    auto r = (*trainer)->Step(x, y);
    ASSERT_TRUE(r.ok());
    EXPECT_LT(r->loss, prev);  // full-batch gradient descent on a convex loss
    prev = r->loss;
  }
  auto after = RunSignature((*trainer)->bundle(), kServingSignatureKey, {{"x", x}});
  ASSERT_TRUE(after.ok());
  EXPECT_NE(testing::FromTensor(before->at("pred")).v, testing::FromTensor(after->at("pred")).v);
}

TEST_F(TrainerTest, RejectsModelsItCannotTrain) {
  WriteLinearModel(dir_ + "/nolos", w0_, b0_, /*with_loss=*/false);
  auto no_loss = Trainer::Load(dir_ + "/nolos", {});
  ASSERT_FALSE(no_loss.ok());
  EXPECT_EQ(no_loss.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(no_loss.status().message(), HasSubstr("no 'loss' output"));

  auto bad_lr = Trainer::Load(dir_ + "/1", {.learning_rate = 0});
  ASSERT_FALSE(bad_lr.ok());
  EXPECT_THAT(bad_lr.status().message(), HasSubstr("learning_rate must be finite and > 0"));
  auto bad_beta = Trainer::Load(dir_ + "/1", {.beta2 = 1.0});
  ASSERT_FALSE(bad_beta.ok());
  EXPECT_THAT(bad_beta.status().message(), HasSubstr("beta2"));

  EXPECT_THAT(ParseOptimizerKind("rmsprop").status().message(),
              HasSubstr("unknown optimizer 'rmsprop'; expected sgd, momentum, adam or adamw"));
  EXPECT_EQ(*ParseOptimizerKind("adamw"), OptimizerKind::kAdamW);

  auto missing = Trainer::Load(dir_ + "/nope", {});
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TrainerTest, RejectsBadBatchesWithoutChangingWeights) {
  auto trainer = Trainer::Load(dir_ + "/1", {.kind = OptimizerKind::kSgd, .learning_rate = 0.1});
  ASSERT_TRUE(trainer.ok());
  const std::vector<double> before = Params(**trainer);
  Tensor x = testing::ToTensor(testing::Random(Shape{kN, kD}), DType::kFloat);
  Tensor y = testing::ToTensor(testing::Random(Shape{kN, kK}), DType::kFloat);
  Tensor x64 = testing::ToTensor(testing::Random(Shape{kN, kD}), DType::kDouble);
  auto wrong_dtype = (*trainer)->Step(x64, y);
  EXPECT_EQ(wrong_dtype.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(wrong_dtype.status().message(), HasSubstr("input 'x' is double"));
  Tensor x_bad = testing::ToTensor(testing::Random(Shape{kN, kD + 1}), DType::kFloat);
  EXPECT_THAT((*trainer)->Step(x_bad, y).status().message(), HasSubstr("input 'x' has shape"));
  auto missing = (*trainer)->Step({{"x", x}});
  EXPECT_THAT(missing.status().message(), HasSubstr("missing input 'y'"));
  EXPECT_EQ(Params(**trainer), before);
  EXPECT_EQ((*trainer)->step(), 0);
}

TEST(TrainerDigitsTest, LabelOutOfRangeIsAnErrorNotACrash) {
  const std::string dir = ::testing::TempDir() + "/trainer_digits_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(WriteExampleModels(dir).ok());
  auto trainer = Trainer::Load(dir + "/digits_mlp/1", {});
  ASSERT_TRUE(trainer.ok()) << trainer.status();
  EXPECT_EQ((*trainer)->label_classes(), (std::map<std::string, int64_t>{{"labels", 10}}));
  Tensor pixels = testing::ToTensor(testing::Random(Shape{4, 64}, 0, 1), DType::kFloat);
  Tensor labels = testing::ToTensor(testing::Values(Shape{4}, {1, 2, 10, 3}), DType::kInt64);
  auto r = (*trainer)->Step(pixels, labels);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("10"));
  EXPECT_EQ((*trainer)->step(), 0);
  labels = testing::ToTensor(testing::Values(Shape{4}, {1, 2, 9, 3}), DType::kInt64);
  r = (*trainer)->Step(pixels, labels);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->loss, 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradserve
