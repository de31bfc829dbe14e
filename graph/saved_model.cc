#include "graph/saved_model.h"

#include <map>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "graph/checkpoint.h"
#include "graph/file_io.h"
#include "graph/status.h"

namespace gradserve {
namespace {

absl::Status CheckTensorInfo(const Graph& graph, absl::string_view context,
                             const TensorInfo& info) {
  GS_CHECK_ARG(!info.name().empty(), context, " names no tensor");
  absl::StatusOr<NodeOut> out = graph.FindOutput(info.name());
  if (!out.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(context, " names tensor '", info.name(),
                                                   "', which is not in the graph (",
                                                   out.status().message(), ")"));
  }
  const DType declared = static_cast<DType>(info.dtype());
  const DType actual = out->node->output_type(out->index);
  GS_CHECK_ARG(declared == actual, context, " declares tensor '", info.name(), "' as ",
               DTypeName(declared), " but the graph has ", DTypeName(actual));
  if (info.has_tensor_shape()) {
    const Shape want = Shape::FromProto(info.tensor_shape());
    const Shape& have = out->node->output_shape(out->index);
    GS_CHECK_ARG(want.IsCompatibleWith(have), context, " declares tensor '", info.name(),
                 "' with shape ", want.DebugString(), " but the graph infers ", have.DebugString());
  }
  return absl::OkStatus();
}

absl::Status CheckVariableNode(const Graph& graph, absl::string_view context,
                               const std::string& name) {
  const Node* node = graph.FindNode(name);
  GS_CHECK_ARG(node != nullptr, context, " '", name, "' is not a node of the graph");
  GS_CHECK_ARG(node->op() == "VarHandleOp", context, " '", name, "' is a ", node->op(),
               " node, not a VarHandleOp");
  return absl::OkStatus();
}

absl::Status CheckSignature(const Graph& graph, const std::string& key, const SignatureDef& sig,
                            const absl::flat_hash_set<std::string>& variables) {
  GS_CHECK_ARG(!key.empty(), "a signature has an empty key");
  for (const auto& [name, info] : sig.inputs()) {
    GS_RETURN_IF_ERROR(
        CheckTensorInfo(graph, absl::StrCat("signature '", key, "' input '", name, "'"), info));
  }
  for (const auto& [name, info] : sig.outputs()) {
    GS_RETURN_IF_ERROR(
        CheckTensorInfo(graph, absl::StrCat("signature '", key, "' output '", name, "'"), info));
  }
  for (const std::string& label : sig.label_keys()) {
    GS_CHECK_ARG(sig.inputs().contains(label), "signature '", key, "' label key '", label,
                 "' is not one of its inputs");
  }
  for (const std::string& var : sig.trainable_variables()) {
    const std::string context = absl::StrCat("signature '", key, "' trainable variable");
    GS_RETURN_IF_ERROR(CheckVariableNode(graph, context, var));
    GS_CHECK_ARG(variables.contains(var), context, " '", var,
                 "' is not in the saved model's variables list");
  }
  return absl::OkStatus();
}

}  // namespace

std::string SavedModelProtoPath(const std::string& dir) {
  return absl::StrCat(dir, "/", kSavedModelFileName);
}

std::string SavedModelCheckpointPath(const std::string& dir) {
  return absl::StrCat(dir, "/", kVariablesCheckpointPath);
}

std::string VariableResourceName(const Node& var_handle) {
  absl::StatusOr<std::string> shared = var_handle.GetAttr<std::string>("shared_name");
  return shared.ok() && !shared->empty() ? *shared : var_handle.name();
}

absl::Status ValidateSavedModel(const SavedModel& proto, const Graph& graph) {
  absl::flat_hash_set<std::string> variables;
  for (const std::string& var : proto.variables()) {
    GS_RETURN_IF_ERROR(CheckVariableNode(graph, "variable", var));
    GS_CHECK_ARG(variables.insert(var).second, "variable '", var, "' is listed twice");
  }
  // Sorted, so the first error reported does not depend on hash order.
  const std::map<std::string, SignatureDef> signatures(proto.signature_def().begin(),
                                                       proto.signature_def().end());
  for (const auto& [key, sig] : signatures) {
    GS_RETURN_IF_ERROR(CheckSignature(graph, key, sig, variables));
  }
  return absl::OkStatus();
}

absl::StatusOr<SavedModelData> ReadSavedModel(const std::string& dir) {
  const std::string path = SavedModelProtoPath(dir);
  GS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  SavedModelData data;
  if (!data.proto.ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": does not parse as a SavedModel"));
  }
  absl::StatusOr<std::unique_ptr<Graph>> graph = Graph::FromGraphDef(data.proto.graph_def());
  if (!graph.ok()) return Annotate(graph.status(), path);
  data.graph = *std::move(graph);
  GS_RETURN_IF_ERROR(Annotate(ValidateSavedModel(data.proto, *data.graph), path));
  return data;
}

absl::Status WriteSavedModel(const std::string& dir, const SavedModel& proto,
                             const std::vector<std::pair<std::string, Tensor>>& variables,
                             int64_t step,
                             const std::vector<std::pair<std::string, Tensor>>& state) {
  GS_ASSIGN_OR_RETURN(std::unique_ptr<Graph> graph, Graph::FromGraphDef(proto.graph_def()));
  GS_RETURN_IF_ERROR(ValidateSavedModel(proto, *graph));
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, value] : variables) {
    GS_CHECK_ARG(given.emplace(name, &value).second, "variable '", name, "' is given twice");
  }
  GS_CHECK_ARG(given.size() == static_cast<size_t>(proto.variables_size()),
               "the saved model lists ", proto.variables_size(), " variables but ", given.size(),
               " values are given");
  for (const std::string& name : proto.variables()) {
    auto it = given.find(name);
    GS_CHECK_ARG(it != given.end(), "no value given for variable '", name, "'");
    const Node& node = *graph->FindNode(name);
    GS_ASSIGN_OR_RETURN(DType dtype, node.GetAttr<DType>("dtype"));
    GS_ASSIGN_OR_RETURN(Shape shape, node.GetAttr<Shape>("shape"));
    const Tensor& value = *it->second;
    GS_CHECK_ARG(value.dtype() == dtype && shape.IsCompatibleWith(value.shape()), "variable '",
                 name, "' is ", DTypeName(dtype), shape.DebugString(), " but its value is ",
                 DTypeName(value.dtype()), value.shape().DebugString());
  }
  for (const auto& [name, value] : state) {
    GS_CHECK_ARG(!given.contains(name), "state tensor '", name, "' has a variable's name");
  }
  GS_RETURN_IF_ERROR(CreateDirectories(absl::StrCat(dir, "/variables")));
  if (!variables.empty() || !state.empty()) {
    std::vector<std::pair<std::string, Tensor>> tensors = variables;
    tensors.insert(tensors.end(), state.begin(), state.end());
    GS_RETURN_IF_ERROR(WriteCheckpoint(SavedModelCheckpointPath(dir), tensors, step));
  }
  // Deterministic (sorted maps), so saving the same model twice gives the same bytes.
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!proto.SerializeToCodedStream(&coded)) {
      return absl::InternalError("cannot serialize the SavedModel proto");
    }
  }
  return WriteFileAtomically(SavedModelProtoPath(dir), bytes);
}

}  // namespace gradserve
