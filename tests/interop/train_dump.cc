// Writes what tests/interop/tf_train_check.py compares against TensorFlow: for
// the example digits_mlp and digits_cnn (fresh Glorot weights from --seed) and
// random batches,
//
//   <out>/<model>/init/<var>.npy      the initial weights ('/' in names -> '__')
//   <out>/<model>/x.npy, labels.npy   the batch the gradients are taken on
//   <out>/<model>/grads/<var>.npy     d(loss)/d(var) from AddGradients
//   <out>/<model>/steps/<i>/         10 Adam steps (learning rate 0.01): before
//                                     step i the weights <var>.npy and slots
//                                     <var>.m.npy, <var>.v.npy, the batch x.npy,
//                                     labels.npy, and step i's gradients
//                                     grad_<var>.npy; steps/10/ the final state
//   <out>/<model>/losses.npy          the loss of each step
//
//   train_dump --out DIR --seed N
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "autodiff/gradients.h"
#include "graph/example_models.h"
#include "graph/npy.h"
#include "graph/status.h"
#include "runtime/trainer.h"

namespace gradserve {
namespace {

constexpr int kBatch = 32;
constexpr int kSteps = 10;
constexpr double kLearningRate = 0.01;

std::string FileName(const std::string& var) {
  return absl::StrReplaceAll(var, {{"/", "__"}}) + ".npy";
}

struct Batch {
  Tensor x, labels;
};

Batch RandomBatch(std::mt19937_64& rng, const Shape& example) {
  std::vector<int64_t> dims = {kBatch};
  for (int i = 0; i < example.rank(); ++i) dims.push_back(example.dim(i));
  Batch b{Tensor(DType::kFloat, Shape(dims)), Tensor(DType::kInt64, Shape{kBatch})};
  std::uniform_real_distribution<float> pixel(0.0f, 1.0f);
  std::uniform_int_distribution<int64_t> label(0, 9);
  for (int64_t i = 0; i < b.x.num_elements(); ++i) b.x.data<float>()[i] = pixel(rng);
  for (int64_t i = 0; i < kBatch; ++i) b.labels.data<int64_t>()[i] = label(rng);
  return b;
}

// d(loss)/d(var) for every trainable variable, built with AddGradients on the
// saved model's own graph and run in a fresh session.
absl::Status DumpGradients(const std::string& model_dir, const Batch& batch,
                           const std::string& out) {
  GS_ASSIGN_OR_RETURN(SavedModelData data, ReadSavedModel(model_dir));
  const SignatureDef& train = data.proto.signature_def().at(kTrainSignatureKey);
  GS_ASSIGN_OR_RETURN(NodeOut loss, data.graph->FindOutput(train.outputs().at("loss").name()));
  std::vector<Output> reads;
  std::vector<std::string> names;
  for (const std::string& var : train.trainable_variables()) {
    for (const OutEdge& e : data.graph->FindNode(var)->out_edges()) {
      if (e.dst->op() == "ReadVariableOp") {
        reads.push_back(Output(e.dst, 0));
        names.push_back(var);
      }
    }
  }
  Scope s(data.graph.get());
  GS_ASSIGN_OR_RETURN(std::vector<Output> grads,
                      AddGradients(s.NewSubScope("grads"), {Output(loss)}, reads));
  std::vector<std::string> fetches;
  for (const Output& g : grads) fetches.push_back(g.name());
  GS_ASSIGN_OR_RETURN(Checkpoint ckpt, ReadCheckpoint(SavedModelCheckpointPath(model_dir)));
  GS_ASSIGN_OR_RETURN(auto session, Session::Create(std::move(data.graph)));
  const std::vector<std::string> vars(data.proto.variables().begin(), data.proto.variables().end());
  GS_RETURN_IF_ERROR(RestoreVariables(*session, vars, ckpt));
  std::filesystem::create_directories(out + "/grads");
  std::filesystem::create_directories(out + "/init");
  for (const std::string& var : vars) {
    GS_RETURN_IF_ERROR(WriteNpy(out + "/init/" + FileName(var), ckpt.tensors.at(var)));
  }
  FeedList feeds;
  for (const auto& [key, info] : train.inputs()) {
    feeds.emplace_back(info.name(), key == "labels" ? batch.labels : batch.x);
  }
  std::vector<Tensor> values;
  GS_RETURN_IF_ERROR(session->Run(feeds, fetches, {}, &values));
  for (size_t i = 0; i < names.size(); ++i) {
    GS_RETURN_IF_ERROR(WriteNpy(out + "/grads/" + FileName(names[i]), values[i]));
  }
  GS_RETURN_IF_ERROR(WriteNpy(out + "/x.npy", batch.x));
  return WriteNpy(out + "/labels.npy", batch.labels);
}

// Saves every trainable variable and its Adam slots to <dir>/<var>.npy,
// <var>.m.npy and <var>.v.npy.
absl::Status DumpState(Trainer& trainer, const std::string& dir) {
  std::filesystem::create_directories(dir);
  for (const std::string& var : trainer.signature().trainable_variables()) {
    for (const auto& [suffix, name] : {std::pair<std::string, std::string>{"", var},
                                       {".m", var + "/Adam"},
                                       {".v", var + "/Adam_1"}}) {
      GS_ASSIGN_OR_RETURN(Tensor value, ReadVariable(trainer.session(), name));
      const std::string file = FileName(var);
      GS_RETURN_IF_ERROR(WriteNpy(
          absl::StrCat(dir, "/", file.substr(0, file.size() - 4), suffix, ".npy"), value));
    }
  }
  return absl::OkStatus();
}

// 10 Adam steps. Before step i: the weights and slots (steps/<i>/), the batch;
// from step i: its gradients (steps/<i>/grad_<var>.npy, fetched in the same run
// as the update) and loss; after the last: steps/10/.
absl::Status DumpAdamSteps(const std::string& model_dir, std::mt19937_64& rng,
                           const Shape& example, const std::string& out) {
  OptimizerConfig adam{.kind = OptimizerKind::kAdam, .learning_rate = kLearningRate};
  GS_ASSIGN_OR_RETURN(auto trainer, Trainer::Load(model_dir, adam));
  // The train signature plus each gradient as an output "grad:<var>".
  SignatureDef sig = trainer->signature();
  const auto& vars = sig.trainable_variables();
  std::vector<std::string> keys = {"loss"};
  for (int i = 0; i < vars.size(); ++i) {
    TensorInfo& info = (*sig.mutable_outputs())["grad:" + vars[i]];
    info.set_name(trainer->train_graph().gradients[i]);
    info.set_dtype(DT_FLOAT);
    keys.push_back("grad:" + vars[i]);
  }
  std::string feature_key;
  for (const auto& [key, info] : sig.inputs()) {
    if (key != "labels") feature_key = key;
  }
  Tensor losses(DType::kDouble, Shape{kSteps});
  for (int i = 0; i < kSteps; ++i) {
    const std::string dir = absl::StrCat(out, "/steps/", i);
    GS_RETURN_IF_ERROR(DumpState(*trainer, dir));
    Batch b = RandomBatch(rng, example);
    GS_RETURN_IF_ERROR(WriteNpy(dir + "/x.npy", b.x));
    GS_RETURN_IF_ERROR(WriteNpy(dir + "/labels.npy", b.labels));
    GS_ASSIGN_OR_RETURN(
        auto outputs,
        RunSignatureDef(trainer->session(), sig, "train", {{feature_key, b.x}, {"labels", b.labels}},
                        keys, {trainer->train_graph().train_op}));
    for (const std::string& var : vars) {
      GS_RETURN_IF_ERROR(WriteNpy(dir + "/grad_" + FileName(var), outputs.at("grad:" + var)));
    }
    losses.data<double>()[i] = outputs.at("loss").data<float>()[0];
  }
  GS_RETURN_IF_ERROR(DumpState(*trainer, absl::StrCat(out, "/steps/", kSteps)));
  return WriteNpy(out + "/losses.npy", losses);
}

absl::Status Main(const std::string& out, uint64_t seed) {
  const std::string models = out + "/models";
  GS_RETURN_IF_ERROR(WriteExampleModels(models, seed));
  std::mt19937_64 rng(seed);
  for (const auto& [name, example] : {std::pair<std::string, Shape>{"digits_mlp", Shape{64}},
                                      {"digits_cnn", Shape{8, 8, 1}}}) {
    const std::string dir = absl::StrCat(models, "/", name, "/1");
    GS_RETURN_IF_ERROR(DumpGradients(dir, RandomBatch(rng, example), out + "/" + name));
    GS_RETURN_IF_ERROR(DumpAdamSteps(dir, rng, example, out + "/" + name));
  }
  return absl::OkStatus();
}

}  // namespace
}  // namespace gradserve

int main(int argc, char** argv) {
  std::string out;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    if (flag == "--out") {
      out = argv[i + 1];
    } else if (flag == "--seed") {
      seed = std::strtoull(argv[i + 1], nullptr, 10);
    }
  }
  if (out.empty()) {
    std::cerr << "usage: train_dump --out DIR [--seed N]\n";
    return 2;
  }
  absl::Status status = gradserve::Main(out, seed);
  if (!status.ok()) {
    std::cerr << "train_dump: " << status << "\n";
    return 1;
  }
  return 0;
}
