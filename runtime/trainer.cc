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
    case DType::kDouble:
      return t.data<double>()[0];
    case DType::kFloat:
      return t.data<float>()[0];
    case DType::kHalf:
      return static_cast<float>(t.data<half>()[0]);
    case DType::kBFloat16:
      return static_cast<float>(t.data<bfloat16>()[0]);
    default:
      return std::nan("");
  }
}

// The label inputs that feed a SparseSoftmaxCrossEntropyWithLogits, with its
// logits' class count when the graph knows it.
std::map<std::string, int64_t> LabelClasses(const Graph& graph, const SignatureDef& sig) {
  std::map<std::string, int64_t> classes;
  for (const std::string& key : sig.label_keys()) {
    auto info = sig.inputs().find(key);
    if (info == sig.inputs().end()) continue;
    absl::StatusOr<NodeOut> label = graph.FindOutput(info->second.name());
    if (!label.ok()) continue;
    // Follow the label through value-preserving ops to its loss.
    std::vector<NodeOut> frontier = {*label};
    while (!frontier.empty()) {
      NodeOut at = frontier.back();
      frontier.pop_back();
      for (const OutEdge& e : at.node->out_edges()) {
        if (e.src_output != at.index) continue;
        const std::string& op = e.dst->op();
        if (op == "Identity" || op == "Cast") {
          frontier.push_back({e.dst, 0});
        } else if (op == "SparseSoftmaxCrossEntropyWithLogits" && e.dst_input == 1) {
          const NodeOut logits = e.dst->input(0);
          const Shape& shape = logits.node->output_shape(logits.index);
          if (shape.rank() == 2 && shape.dim(1) > 0) classes[key] = shape.dim(1);
        }
      }
    }
  }
  return classes;
}

}  // namespace

bool PendingStep::finite() const { return std::isfinite(loss) && std::isfinite(global_norm); }

absl::StatusOr<std::unique_ptr<Trainer>> Trainer::Load(const std::string& dir,
                                                       const OptimizerConfig& optimizer,
                                                       const SessionOptions& options) {
  std::unique_ptr<Trainer> trainer(new Trainer());
  TrainGraph& train = trainer->train_;
  auto extend = [&](Graph& graph, const SavedModel& meta) -> absl::Status {
    auto it = meta.signature_def().find(kTrainSignatureKey);
    if (it == meta.signature_def().end()) {
      return absl::FailedPreconditionError(
          absl::StrCat("the model has no '", kTrainSignatureKey, "' signature"));
    }
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
  const Graph& graph = trainer->bundle_.session->graph();
  for (size_t i = 0; i < train.gradients.size(); ++i) {
    if (train.gradients[i].empty()) continue;
    GS_ASSIGN_OR_RETURN(NodeOut grad, graph.FindOutput(train.gradients[i]));
    const std::string key = absl::StrCat("gradient/", i);
    TensorInfo& info = (*trainer->step_signature_.mutable_outputs())[key];
    info.set_name(train.gradients[i]);
    info.set_dtype(static_cast<DataType>(grad.node->output_type(grad.index)));
    trainer->gradient_keys_.push_back(key);
  }
  trainer->label_classes_ = LabelClasses(graph, sig);
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

absl::StatusOr<PendingStep> Trainer::ComputeStep(const std::map<std::string, Tensor>& inputs) {
  std::vector<std::string> keys = {kLossOutputKey, kGlobalNormKey};
  keys.insert(keys.end(), gradient_keys_.begin(), gradient_keys_.end());
  // The gradients stay where they were computed (a GPU's memory) until
  // ApplyStep feeds them back; only the loss and the norm come to the host.
  RunOptions options;
  const Device* device = bundle_.session->devices().default_device();
  if (device->type() != kDeviceCpu) {
    options.fetch_devices.assign(keys.size(), device->name());
    options.fetch_devices[0] = options.fetch_devices[1] = "";
  }
  GS_ASSIGN_OR_RETURN(auto outputs,
                      RunSignatureDef(*bundle_.session, step_signature_, kTrainSignatureKey, inputs,
                                      keys, /*targets=*/{}, options));
  PendingStep pending;
  pending.loss = ScalarAsDouble(outputs.at(kLossOutputKey));
  pending.global_norm = ScalarAsDouble(outputs.at(kGlobalNormKey));
  for (const std::string& key : gradient_keys_) {
    pending.gradients.emplace_back(step_signature_.outputs().at(key).name(),
                                   std::move(outputs.at(key)));
  }
  return pending;
}

absl::StatusOr<int64_t> Trainer::ApplyStep(const PendingStep& pending) {
  absl::MutexLock lock(&mu_);
  std::vector<Tensor> unused;
  GS_RETURN_IF_ERROR(bundle_.session->Run(pending.gradients, {}, {train_.train_op}, &unused));
  return ++step_;
}

std::vector<std::string> Trainer::StateVariables() const {
  std::vector<std::string> names(bundle_.meta.variables().begin(), bundle_.meta.variables().end());
  names.insert(names.end(), train_.state_variables.begin(), train_.state_variables.end());
  return names;
}

absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> Trainer::StateTensors() const {
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const std::string& name : StateVariables()) {
    GS_ASSIGN_OR_RETURN(Tensor value, ReadVariable(*bundle_.session, name));
    tensors.emplace_back(name, std::move(value));
  }
  return tensors;
}

absl::Status Trainer::RestoreState(const std::map<std::string, Tensor>& tensors) {
  const std::vector<std::string> names = StateVariables();
  const Graph& graph = bundle_.session->graph();
  for (const std::string& name : names) {
    auto it = tensors.find(name);
    GS_CHECK_ARG(it != tensors.end(), "no value for variable '", name, "'");
    const Node* node = graph.FindNode(name);
    GS_ASSIGN_OR_RETURN(DType dtype, node->GetAttr<DType>("dtype"));
    GS_ASSIGN_OR_RETURN(Shape shape, node->GetAttr<Shape>("shape"));
    GS_CHECK_ARG(it->second.dtype() == dtype && shape.IsCompatibleWith(it->second.shape()),
                 "variable '", name, "' is ", DTypeName(dtype), shape.DebugString(),
                 " but the value given is ", DTypeName(it->second.dtype()),
                 it->second.shape().DebugString());
  }
  absl::MutexLock lock(&mu_);
  for (const std::string& name : names) {
    GS_RETURN_IF_ERROR(AssignVariable(*bundle_.session, name, tensors.at(name)));
  }
  step_ = tensors.at(train_.global_step).data<int64_t>()[0];
  return absl::OkStatus();
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
