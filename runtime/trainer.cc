#include "runtime/trainer.h"

#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "graph/status.h"

namespace gradserve {
namespace {

constexpr char kGlobalNormKey[] = "global_norm";

// Gives each optimizer state variable its checkpointed value, or zeros
// (global_step: the checkpoint's step) when the checkpoint lacks it or holds a
// value of another shape (a different model or optimizer).
absl::Status InitializeState(SavedModelBundle& bundle, const TrainGraph& train) {
  for (const std::string& name : train.state_variables) {
    const Node* node = bundle.session->graph().FindNode(name);
    GS_ASSIGN_OR_RETURN(DType dtype, node->GetAttr<DType>("dtype"));
    GS_ASSIGN_OR_RETURN(Shape shape, node->GetAttr<Shape>("shape"));
    auto it = bundle.extra_state.find(name);
    if (it != bundle.extra_state.end() && it->second.dtype() == dtype &&
        shape.IsCompatibleWith(it->second.shape())) {
      GS_RETURN_IF_ERROR(AssignVariable(*bundle.session, name, it->second));
      continue;
    }
    GS_CHECK_ARG(shape.IsFullyDefined(), "optimizer state '", name, "' has shape ",
                 shape.DebugString(), "; trainable variables need a fully defined shape");
    Tensor zeros(dtype, shape);
    std::memset(zeros.raw_data(), 0, zeros.bytes());
    if (name == train.global_step) zeros.data<int64_t>()[0] = bundle.step;
    GS_RETURN_IF_ERROR(AssignVariable(*bundle.session, name, std::move(zeros)));
  }
  return absl::OkStatus();
}

// The value of a floating scalar (loss, norm).
double ScalarAsDouble(const Tensor& t) {
  switch (t.dtype()) {
    case DType::kDouble: return t.data<double>()[0];
    case DType::kFloat: return t.data<float>()[0];
    case DType::kHalf: return static_cast<float>(t.data<half>()[0]);
    case DType::kBFloat16: return static_cast<float>(t.data<bfloat16>()[0]);
    default: return std::nan("");
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Load(const std::string& dir,
                                                       const OptimizerConfig& optimizer,
                                                       const SessionOptions& options) {
  std::unique_ptr<Trainer> trainer(new Trainer());
  TrainGraph& train = trainer->train_;
  auto extend = [&](Graph& graph, const SavedModel& meta) -> absl::Status {
    auto it = meta.signature_def().find(kTrainSignatureKey);
    GS_CHECK_ARG(it != meta.signature_def().end(), "the model has no '", kTrainSignatureKey,
                 "' signature");
    GS_ASSIGN_OR_RETURN(train, BuildTrainGraph(graph, it->second, optimizer));
    return absl::OkStatus();
  };
  GS_ASSIGN_OR_RETURN(trainer->bundle_, LoadSavedModel(dir, options, extend));
  GS_RETURN_IF_ERROR(Annotate(InitializeState(trainer->bundle_, train), dir));
  trainer->signature_ = trainer->bundle_.FindSignature(kTrainSignatureKey);
  const SignatureDef& sig = *trainer->signature_;
  trainer->step_signature_ = sig;
  TensorInfo& norm = (*trainer->step_signature_.mutable_outputs())[kGlobalNormKey];
  norm.set_name(train.global_norm);
  norm.set_dtype(DT_FLOAT);
  if (sig.label_keys_size() == 1 && sig.inputs_size() == 2) {
    trainer->label_key_ = sig.label_keys(0);
    for (const auto& [key, info] : sig.inputs()) {
      if (key != trainer->label_key_) trainer->feature_key_ = key;
    }
  }
  GS_ASSIGN_OR_RETURN(Tensor step, ReadVariable(*trainer->bundle_.session, train.global_step));
  absl::MutexLock lock(&trainer->mu_);
  trainer->step_ = step.data<int64_t>()[0];
  return trainer;
}

absl::StatusOr<StepResult> Trainer::Step(const std::map<std::string, Tensor>& inputs) {
  absl::MutexLock lock(&mu_);
  // The loss and the norm come from the same run as the update.
  GS_ASSIGN_OR_RETURN(auto outputs,
                      RunSignatureDef(*bundle_.session, step_signature_, kTrainSignatureKey, inputs,
                                      {kLossOutputKey, kGlobalNormKey}, {train_.train_op}));
  StepResult r;
  r.loss = ScalarAsDouble(outputs.at(kLossOutputKey));
  r.global_norm = ScalarAsDouble(outputs.at(kGlobalNormKey));
  r.step = ++step_;
  return r;
}

absl::StatusOr<StepResult> Trainer::Step(const Tensor& features, const Tensor& labels) {
  GS_CHECK_ARG(!feature_key_.empty(), "the train signature has ", signature_->inputs_size(),
               " inputs; pass them by name");
  return Step({{feature_key_, features}, {label_key_, labels}});
}

absl::Status Trainer::Save(const std::string& dir) {
  absl::MutexLock lock(&mu_);
  return SaveSessionState(dir, bundle_.meta, *bundle_.session, train_.state_variables, step_);
}

int64_t Trainer::step() const {
  absl::MutexLock lock(&mu_);
  return step_;
}

}  // namespace gradserve
