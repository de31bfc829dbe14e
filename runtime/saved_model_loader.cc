#include "runtime/saved_model_loader.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "graph/status.h"

namespace gradserve {
namespace {

absl::StatusOr<const Node*> FindVarHandle(const Graph& graph, const std::string& name) {
  const Node* node = graph.FindNode(name);
  if (node == nullptr) {
    return absl::NotFoundError(absl::StrCat("variable '", name, "' is not a node of the graph"));
  }
  GS_CHECK_ARG(node->op() == "VarHandleOp", "variable '", name, "' is a ", node->op(),
               " node, not a VarHandleOp");
  return node;
}

absl::StatusOr<Tensor> ReadVariableOf(Session& session, const Node& node) {
  Var* var = session.resources().Lookup(VariableResourceName(node));
  absl::StatusOr<Tensor> value =
      var != nullptr ? var->Read() : absl::FailedPreconditionError("never initialized");
  if (!value.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("variable '", node.name(), "' has no value: ", value.status().message()));
  }
  return value->OnHost();  // variables a GPU uses live there
}

template <typename Map>
std::string SortedKeys(const Map& map) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : map) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return absl::StrJoin(keys, ", ");
}

absl::Status CheckInput(const std::string& sig_key, const std::string& key, const TensorInfo& info,
                        const Tensor& t) {
  GS_CHECK_ARG(t.initialized(), "input '", key, "' has no value");
  const DType want = static_cast<DType>(info.dtype());
  GS_CHECK_ARG(t.dtype() == want, "input '", key, "' is ", DTypeName(t.dtype()), " but signature '",
               sig_key, "' expects ", DTypeName(want));
  if (info.has_tensor_shape()) {
    const Shape shape = Shape::FromProto(info.tensor_shape());
    GS_CHECK_ARG(shape.IsCompatibleWith(t.shape()), "input '", key, "' has shape ",
                 t.shape().DebugString(), " but signature '", sig_key, "' expects ",
                 shape.DebugString());
  }
  return absl::OkStatus();
}

}  // namespace

const SignatureDef* SavedModelBundle::FindSignature(absl::string_view key) const {
  auto it = meta.signature_def().find(std::string(key));
  return it == meta.signature_def().end() ? nullptr : &it->second;
}

absl::Status AssignVariable(Session& session, const std::string& var_handle, Tensor value) {
  GS_ASSIGN_OR_RETURN(const Node* node, FindVarHandle(session.graph(), var_handle));
  GS_ASSIGN_OR_RETURN(DType dtype, node->GetAttr<DType>("dtype"));
  GS_ASSIGN_OR_RETURN(Shape shape, node->GetAttr<Shape>("shape"));
  GS_CHECK_ARG(value.dtype() == dtype && shape.IsCompatibleWith(value.shape()), "variable '",
               var_handle, "' is ", DTypeName(dtype), shape.DebugString(), " but the value is ",
               DTypeName(value.dtype()), value.shape().DebugString());
  GS_CHECK_ARG(value.host_accessible(), "the value for variable '", var_handle, "' is on ",
               value.device());
  GS_ASSIGN_OR_RETURN(
      Var * var, session.resources().LookupOrCreate(VariableResourceName(*node), dtype, shape));
  return Annotate(var->Assign(std::move(value)), absl::StrCat("variable '", var_handle, "'"));
}

absl::StatusOr<Tensor> ReadVariable(Session& session, const std::string& var_handle) {
  GS_ASSIGN_OR_RETURN(const Node* node, FindVarHandle(session.graph(), var_handle));
  return ReadVariableOf(session, *node);
}

absl::Status RestoreVariables(Session& session, const std::vector<std::string>& variables,
                              const Checkpoint& checkpoint) {
  for (const std::string& name : variables) {
    auto it = checkpoint.tensors.find(name);
    if (it == checkpoint.tensors.end()) {
      return absl::NotFoundError(
          absl::StrCat("the checkpoint has no value for variable '", name, "'"));
    }
    GS_RETURN_IF_ERROR(AssignVariable(session, name, it->second));
  }
  return absl::OkStatus();
}

absl::StatusOr<SavedModelBundle> LoadSavedModel(const std::string& dir,
                                                const SessionOptions& options,
                                                const GraphExtension& extend) {
  GS_ASSIGN_OR_RETURN(SavedModelData data, ReadSavedModel(dir));
  Checkpoint checkpoint;
  if (data.proto.variables_size() > 0) {
    GS_ASSIGN_OR_RETURN(checkpoint, ReadCheckpoint(SavedModelCheckpointPath(dir)));
  }
  if (extend) GS_RETURN_IF_ERROR(Annotate(extend(*data.graph, data.proto), dir));
  SavedModelBundle bundle;
  GS_ASSIGN_OR_RETURN(bundle.session, Session::Create(std::move(data.graph), options));
  const std::vector<std::string> variables(data.proto.variables().begin(),
                                           data.proto.variables().end());
  GS_RETURN_IF_ERROR(Annotate(RestoreVariables(*bundle.session, variables, checkpoint),
                              absl::StrCat("restoring ", SavedModelCheckpointPath(dir))));
  bundle.meta = std::move(data.proto);
  if (!extend) bundle.meta.clear_graph_def();
  bundle.step = checkpoint.step;
  for (auto& [name, value] : checkpoint.tensors) {
    if (std::find(variables.begin(), variables.end(), name) == variables.end()) {
      bundle.extra_state.emplace(name, std::move(value));
    }
  }
  return bundle;
}

absl::StatusOr<std::map<std::string, Tensor>> RunSignature(
    const SavedModelBundle& bundle, const std::string& key,
    const std::map<std::string, Tensor>& inputs, const std::vector<std::string>& output_keys,
    const std::vector<std::string>& targets) {
  const SignatureDef* sig = bundle.FindSignature(key);
  if (sig == nullptr) {
    return absl::NotFoundError(absl::StrCat(
        "no signature '", key, "'; the model has: ", SortedKeys(bundle.meta.signature_def())));
  }
  return RunSignatureDef(*bundle.session, *sig, key, inputs, output_keys, targets);
}

absl::StatusOr<std::map<std::string, Tensor>> RunSignatureDef(
    Session& session, const SignatureDef& signature, const std::string& key,
    const std::map<std::string, Tensor>& inputs, const std::vector<std::string>& output_keys,
    const std::vector<std::string>& targets, const RunOptions& options, RunMetadata* metadata) {
  const SignatureDef* sig = &signature;
  // Feeds in sorted key order, so equal requests reuse one cached executor.
  FeedList feeds;
  for (const auto& [name, value] : inputs) {
    auto it = sig->inputs().find(name);
    GS_CHECK_ARG(it != sig->inputs().end(), "unknown input '", name, "' for signature '", key,
                 "'; its inputs are: ", SortedKeys(sig->inputs()));
    GS_RETURN_IF_ERROR(CheckInput(key, name, it->second, value));
    feeds.emplace_back(it->second.name(), value);
  }
  if (inputs.size() != static_cast<size_t>(sig->inputs().size())) {
    for (const auto& [name, info] : sig->inputs()) {
      GS_CHECK_ARG(inputs.contains(name), "missing input '", name, "' for signature '", key, "'");
    }
  }

  std::vector<std::string> keys = output_keys;
  if (keys.empty()) {
    for (const auto& [name, info] : sig->outputs()) keys.push_back(name);
    std::sort(keys.begin(), keys.end());
  }
  GS_CHECK_ARG(!keys.empty() || !targets.empty(), "signature '", key, "' has no outputs");
  std::vector<std::string> fetches;
  for (const std::string& name : keys) {
    auto it = sig->outputs().find(name);
    GS_CHECK_ARG(it != sig->outputs().end(), "unknown output '", name, "' for signature '", key,
                 "'; its outputs are: ", SortedKeys(sig->outputs()));
    fetches.push_back(it->second.name());
  }
  std::vector<Tensor> values;
  GS_RETURN_IF_ERROR(session.Run(feeds, fetches, targets, &values, options, metadata));
  std::map<std::string, Tensor> out;
  for (size_t i = 0; i < keys.size(); ++i) out[keys[i]] = std::move(values[i]);
  return out;
}

absl::Status SaveSavedModel(const std::string& dir, const Graph& graph,
                            const std::map<std::string, SignatureDef>& signatures, Session& session,
                            int64_t step) {
  SavedModel proto;
  *proto.mutable_graph_def() = graph.ToGraphDef();
  for (const auto& [key, sig] : signatures) (*proto.mutable_signature_def())[key] = sig;
  proto.set_producer("gradserve SaveSavedModel");
  std::vector<std::pair<std::string, Tensor>> values;
  for (const auto& node : graph.nodes()) {
    if (node->op() != "VarHandleOp") continue;
    proto.add_variables(node->name());
    GS_ASSIGN_OR_RETURN(Tensor value, ReadVariableOf(session, *node));
    values.emplace_back(node->name(), std::move(value));
  }
  return WriteSavedModel(dir, proto, values, step);
}

absl::Status SaveSessionState(const std::string& dir, const SavedModel& meta, Session& session,
                              const std::vector<std::string>& state_variables, int64_t step) {
  auto read_all =
      [&](const auto& names) -> absl::StatusOr<std::vector<std::pair<std::string, Tensor>>> {
    std::vector<std::pair<std::string, Tensor>> values;
    for (const std::string& name : names) {
      GS_ASSIGN_OR_RETURN(Tensor value, ReadVariable(session, name));
      values.emplace_back(name, std::move(value));
    }
    return values;
  };
  GS_ASSIGN_OR_RETURN(auto variables, read_all(meta.variables()));
  GS_ASSIGN_OR_RETURN(auto state, read_all(state_variables));
  return WriteSavedModel(dir, meta, variables, step, state);
}

}  // namespace gradserve
