#include <unistd.h>

#include <filesystem>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "graph/builder/ops.h"
#include "graph/file_io.h"
#include "gtest/gtest.h"
#include "runtime/saved_model_loader.h"
#include "tests/unit/ops/op_test_util.h"

namespace gradserve {
namespace {

using ::testing::HasSubstr;

std::string Bytes(const Tensor& t) {
  return std::string(static_cast<const char*>(t.raw_data()), t.bytes());
}

TensorInfo Info(const std::string& name, DType dtype, const Shape& shape) {
  TensorInfo info;
  info.set_name(name);
  info.set_dtype(static_cast<DataType>(dtype));
  shape.ToProto(info.mutable_tensor_shape());
  return info;
}

// y = x @ w + b with w, b resource variables initialised by an "init" op.
struct LinearModel {
  std::unique_ptr<Session> session;
  std::map<std::string, SignatureDef> signatures;
};

LinearModel BuildLinearModel() {
  auto graph = std::make_unique<Graph>();
  Scope s(graph.get());
  Output x = ops::Placeholder(s.WithName("x"), DType::kFloat, Shape{-1, 3});
  Output w = ops::VarHandleOp(s.WithName("w"), DType::kFloat, Shape{3, 4});
  Output b = ops::VarHandleOp(s.WithName("b"), DType::kFloat, Shape{4});
  Output y =
      ops::AddV2(s.WithName("y"), ops::MatMul(s, x, ops::ReadVariableOp(s, w, DType::kFloat)),
                 ops::ReadVariableOp(s, b, DType::kFloat));
  Node* init_w = ops::AssignVariableOp(
      s, w, ops::Const(s, testing::ToTensor(testing::Random(Shape{3, 4}), DType::kFloat)));
  Node* init_b = ops::AssignVariableOp(
      s, b, ops::Const(s, testing::ToTensor(testing::Random(Shape{4}), DType::kFloat)));
  ops::NoOp(s.WithName("init").WithControlDependencies({init_w, init_b}));
  EXPECT_TRUE(s.ok()) << s.status();

  LinearModel m;
  SignatureDef& sig = m.signatures[kServingSignatureKey];
  sig.set_method_name(kPredictMethodName);
  (*sig.mutable_inputs())["x"] = Info("x:0", DType::kFloat, Shape{-1, 3});
  (*sig.mutable_outputs())["y"] = Info(y.name(), DType::kFloat, Shape{-1, 4});
  m.session = *Session::Create(std::move(graph));
  std::vector<Tensor> unused;
  EXPECT_TRUE(m.session->Run({}, {}, {"init"}, &unused).ok());
  return m;
}

class SavedModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/saved_model_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    model_ = BuildLinearModel();
    ASSERT_TRUE(SaveSavedModel(dir_, model_.session->graph(), model_.signatures, *model_.session,
                               /*step=*/17)
                    .ok());
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string CheckpointPath() const { return SavedModelCheckpointPath(dir_); }

  std::string dir_;
  LinearModel model_;
};

TEST_F(SavedModelTest, LoadedModelGivesIdenticalOutputs) {
  absl::StatusOr<SavedModelBundle> bundle = LoadSavedModel(dir_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  EXPECT_EQ(bundle->step, 17);
  EXPECT_FALSE(bundle->meta.has_graph_def());
  EXPECT_THAT(bundle->meta.variables(), ::testing::ElementsAre("w", "b"));
  for (int64_t batch : {1, 5, 0}) {
    const Tensor x = testing::ToTensor(testing::Random(Shape{batch, 3}), DType::kFloat);
    std::vector<Tensor> want;
    ASSERT_TRUE(model_.session->Run({{"x", x}}, {"y"}, {}, &want).ok());
    absl::StatusOr<std::map<std::string, Tensor>> got =
        RunSignature(*bundle, "serving_default", {{"x", x}});
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_EQ(got->size(), 1u);
    EXPECT_EQ(got->at("y").shape(), (Shape{batch, 4}));
    EXPECT_EQ(Bytes(got->at("y")), Bytes(want[0]));
  }
}

TEST_F(SavedModelTest, SavedVariablesMatchTheSession) {
  absl::StatusOr<SavedModelBundle> bundle = LoadSavedModel(dir_);
  ASSERT_TRUE(bundle.ok()) << bundle.status();
  for (const std::string name : {"w", "b"}) {
    EXPECT_EQ(Bytes(*ReadVariable(*bundle->session, name)),
              Bytes(*ReadVariable(*model_.session, name)));
  }
}

TEST_F(SavedModelTest, RunSignatureValidatesInputs) {
  SavedModelBundle bundle = *LoadSavedModel(dir_);
  const Tensor x = testing::ToTensor(testing::Random(Shape{2, 3}), DType::kFloat);
  auto error = [&](const std::map<std::string, Tensor>& inputs,
                   const std::string& key = "serving_default",
                   const std::vector<std::string>& outputs = {}) {
    return RunSignature(bundle, key, inputs, outputs).status();
  };
  EXPECT_THAT(error({{"x", x}, {"z", x}}).message(), HasSubstr("unknown input 'z'"));
  EXPECT_THAT(error({}).message(), HasSubstr("missing input 'x'"));
  EXPECT_THAT(
      error({{"x", testing::ToTensor(testing::Random(Shape{2, 3}), DType::kDouble)}}).message(),
      HasSubstr("input 'x' is double but signature 'serving_default' expects float"));
  EXPECT_THAT(
      error({{"x", testing::ToTensor(testing::Random(Shape{2, 4}), DType::kFloat)}}).message(),
      HasSubstr("input 'x' has shape [2,4]"));
  EXPECT_THAT(error({{"x", x}}, "serving_default", {"nope"}).message(),
              HasSubstr("unknown output 'nope'"));
  EXPECT_EQ(error({{"x", x}}, "train").code(), absl::StatusCode::kNotFound);
  for (const auto& status : {error({{"x", x}, {"z", x}}), error({})}) {
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST_F(SavedModelTest, TruncatedCheckpointFailsToLoad) {
  const std::string bytes = *ReadFileToString(CheckpointPath());
  for (size_t n : {bytes.size() / 2, bytes.size() - 1}) {
    ASSERT_TRUE(WriteFileAtomically(CheckpointPath(), bytes.substr(0, n)).ok());
    const absl::Status status = LoadSavedModel(dir_).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(status.message(), HasSubstr("variables/variables.ckpt"));
  }
}

TEST_F(SavedModelTest, BitFlippedCheckpointFailsToLoad) {
  const std::string bytes = *ReadFileToString(CheckpointPath());
  const CheckpointIndex index = *ReadCheckpointIndex(CheckpointPath());
  std::mt19937_64 rng(testing::Seed() ^ 0x5a7ed);
  for (const CheckpointEntry& e : index.entry()) {
    std::string corrupt = bytes;
    corrupt[e.offset() + rng() % e.size()] ^= static_cast<char>(1 << (rng() % 8));
    ASSERT_TRUE(WriteFileAtomically(CheckpointPath(), corrupt).ok());
    const absl::Status status = LoadSavedModel(dir_).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kDataLoss) << status;
    EXPECT_THAT(status.message(), HasSubstr(absl::StrCat("tensor '", e.name(), "' is corrupt")));
  }
}

TEST_F(SavedModelTest, CheckpointMustMatchTheVariables) {
  const Tensor w = testing::ToTensor(testing::Random(Shape{3, 5}), DType::kFloat);
  const Tensor b = testing::ToTensor(testing::Random(Shape{4}), DType::kFloat);
  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(), {{"w", w}, {"b", b}}, 0).ok());
  absl::Status status = LoadSavedModel(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("variable 'w' is float[3,4] but the value is float[3,5]"));

  const Tensor w64 = testing::ToTensor(testing::Random(Shape{3, 4}), DType::kDouble);
  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(), {{"w", w64}, {"b", b}}, 0).ok());
  EXPECT_THAT(LoadSavedModel(dir_).status().message(), HasSubstr("but the value is double"));

  ASSERT_TRUE(WriteCheckpoint(CheckpointPath(), {{"b", b}}, 0).ok());
  status = LoadSavedModel(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(status.message(), HasSubstr("no value for variable 'w'"));
}

TEST_F(SavedModelTest, RejectsSignaturesThatNameMissingTensors) {
  std::map<std::string, SignatureDef> bad = model_.signatures;
  (*bad[kServingSignatureKey].mutable_outputs())["ghost"] =
      Info("ghost:0", DType::kFloat, Shape{-1});
  absl::Status status =
      SaveSavedModel(dir_ + "_bad", model_.session->graph(), bad, *model_.session);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("output 'ghost' names tensor 'ghost:0'"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "_bad"));

  // The same mistake in a file on disk fails the load.
  SavedModelData data = *ReadSavedModel(dir_);
  (*(*data.proto.mutable_signature_def())[kServingSignatureKey].mutable_inputs())["x"].set_name(
      "x:7");
  ASSERT_TRUE(WriteFileAtomically(SavedModelProtoPath(dir_), data.proto.SerializeAsString()).ok());
  status = LoadSavedModel(dir_).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("saved_model.pb"));
  EXPECT_THAT(status.message(), HasSubstr("input 'x' names tensor 'x:7'"));
}

TEST_F(SavedModelTest, RejectsWrongDtypesAndNonVariables) {
  SavedModelData data = *ReadSavedModel(dir_);
  SavedModel wrong_dtype = data.proto;
  (*(*wrong_dtype.mutable_signature_def())[kServingSignatureKey].mutable_outputs())["y"].set_dtype(
      DT_INT32);
  EXPECT_THAT(ValidateSavedModel(wrong_dtype, *data.graph).message(),
              HasSubstr("declares tensor 'y:0' as int32 but the graph has float"));
  SavedModel not_var = data.proto;
  not_var.add_variables("x");
  EXPECT_THAT(ValidateSavedModel(not_var, *data.graph).message(),
              HasSubstr("'x' is a Placeholder node, not a VarHandleOp"));
  EXPECT_EQ(ReadSavedModel(dir_ + "/nowhere").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(SavedModelTest, SavingAnUninitializedVariableFails) {
  LinearModel fresh = BuildLinearModel();
  std::unique_ptr<Session> uninit =
      *Session::Create(fresh.session->graph().ToGraphDef());  // "init" never runs here
  const absl::Status status =
      SaveSavedModel(dir_ + "_u", uninit->graph(), fresh.signatures, *uninit);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("variable 'w' has no value"));
}

}  // namespace
}  // namespace gradserve
