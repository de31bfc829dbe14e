#include "tools/model_commands.h"

#include <sys/stat.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "graph/checkpoint.h"
#include "graph/file_io.h"
#include "graph/npy.h"
#include "graph/saved_model.h"
#include "graph/status.h"
#include "runtime/saved_model_loader.h"

namespace gradserve::tools {
namespace {

using TensorMap = std::map<std::string, Tensor>;

bool IsTextPath(absl::string_view path) {
  return absl::EndsWith(path, ".pbtxt") || absl::EndsWith(path, ".txt") ||
         absl::EndsWith(path, ".textproto");
}

class FirstErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    if (error_.empty()) {
      error_ = absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message);
    }
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  const std::string& error() const { return error_; }

 private:
  std::string error_;
};

// Reads a binary proto, or a text one when the name ends in .pbtxt/.txt/.textproto.
absl::Status ReadProto(const std::string& path, google::protobuf::Message* message) {
  GS_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
  const std::string type = message->GetDescriptor()->name();
  if (IsTextPath(path)) {
    FirstErrorCollector errors;
    google::protobuf::TextFormat::Parser parser;
    parser.RecordErrorsTo(&errors);
    if (!parser.ParseFromString(bytes, message)) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": not a text-format ", type, ": ", errors.error()));
    }
    return absl::OkStatus();
  }
  if (!message->ParseFromString(bytes)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": does not parse as a binary ", type,
                                                   " (a text-format file must end in .pbtxt)"));
  }
  return absl::OkStatus();
}

absl::Status WriteProto(const std::string& path, const google::protobuf::Message& message) {
  std::string bytes;
  if (IsTextPath(path)) {
    if (!google::protobuf::TextFormat::PrintToString(message, &bytes)) {
      return absl::InternalError(absl::StrCat("cannot print ", path, " as text"));
    }
  } else if (absl::EndsWith(path, ".pb")) {
    // Deterministic (sorted maps), as WriteSavedModel writes them.
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    if (!message.SerializeToCodedStream(&coded)) {
      return absl::InternalError(absl::StrCat("cannot serialize ", path));
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot tell the format of ", path, " from its name (use .pb or .pbtxt)"));
  }
  return WriteFileAtomically(path, bytes);
}

std::string ShapeString(const TensorInfo& info) {
  return info.has_tensor_shape() ? Shape::FromProto(info.tensor_shape()).DebugString() : "?";
}

void PrintTensorInfos(const google::protobuf::Map<std::string, TensorInfo>& infos,
                      std::ostream& out) {
  const std::map<std::string, TensorInfo> sorted(infos.begin(), infos.end());
  for (const auto& [key, info] : sorted) {
    out << absl::StrFormat("    %-20s %-8s %-16s %s\n", key,
                           DTypeName(static_cast<DType>(info.dtype())), ShapeString(info),
                           info.name());
  }
}

void PrintOpCounts(const Graph& graph, std::ostream& out) {
  std::map<std::string, int> counts;
  for (const auto& node : graph.nodes()) ++counts[node->op()];
  out << "ops (" << graph.num_nodes() << " nodes):\n";
  for (const auto& [op, n] : counts) out << absl::StrFormat("  %-24s %d\n", op, n);
}

// The file a fetch or output key is written to; refuses names that would
// escape `dir` ("/" inside a name makes subdirectories, as the interop test expects).
absl::StatusOr<std::string> OutputPath(const std::string& dir, const std::string& name) {
  const std::string file = absl::StrReplaceAll(name, {{":", "_"}});
  for (absl::string_view part : absl::StrSplit(file, '/')) {
    GS_CHECK_ARG(!part.empty() && part != "." && part != "..", "cannot write output '", name,
                 "' under ", dir, ": not a plain relative name");
  }
  return absl::StrCat(dir, "/", file, ".npy");
}

absl::Status WriteOutput(const std::string& dir, const std::string& name, const Tensor& t,
                         std::ostream& out) {
  GS_ASSIGN_OR_RETURN(std::string path, OutputPath(dir, name));
  GS_RETURN_IF_ERROR(CreateDirectories(path.substr(0, path.rfind('/'))));
  GS_RETURN_IF_ERROR(WriteNpy(path, t));
  out << "wrote " << path << " (" << DTypeName(t.dtype()) << t.shape().DebugString() << ")\n";
  return absl::OkStatus();
}

absl::StatusOr<TensorMap> ReadInputs(const std::vector<std::string>& specs) {
  TensorMap inputs;
  for (const std::string& spec : specs) {
    const size_t eq = spec.find('=');
    GS_CHECK_ARG(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--input '", spec,
                 "' must be KEY=FILE.npy");
    const std::string key = spec.substr(0, eq);
    GS_ASSIGN_OR_RETURN(Tensor value, ReadNpy(spec.substr(eq + 1)));
    GS_CHECK_ARG(inputs.emplace(key, std::move(value)).second, "--input '", key,
                 "' is given twice");
  }
  return inputs;
}

absl::Status RunModel(const RunOptions& o, std::ostream& out) {
  GS_ASSIGN_OR_RETURN(TensorMap inputs, ReadInputs(o.inputs));
  GS_ASSIGN_OR_RETURN(SavedModelBundle bundle, LoadSavedModel(o.model_dir));
  GS_ASSIGN_OR_RETURN(auto outputs, RunSignature(bundle, o.signature, inputs, o.output_keys));
  for (const auto& [key, value] : outputs) {
    GS_RETURN_IF_ERROR(WriteOutput(o.output_dir, key, value, out));
  }
  return absl::OkStatus();
}

absl::Status RunGraph(const RunOptions& o, std::ostream& out) {
  GS_CHECK_ARG(!o.fetches.empty(), "--graph needs at least one --fetch NODE:PORT");
  GS_ASSIGN_OR_RETURN(TensorMap inputs, ReadInputs(o.inputs));
  GraphDef graph_def;
  GS_RETURN_IF_ERROR(ReadProto(o.graph_path, &graph_def));
  absl::StatusOr<std::unique_ptr<Session>> session = Session::Create(graph_def);
  if (!session.ok()) return Annotate(session.status(), o.graph_path);
  FeedList feeds(inputs.begin(), inputs.end());
  std::vector<Tensor> values;
  GS_RETURN_IF_ERROR((*session)->Run(feeds, o.fetches, {}, &values));
  for (size_t i = 0; i < o.fetches.size(); ++i) {
    GS_RETURN_IF_ERROR(WriteOutput(o.output_dir, o.fetches[i], values[i], out));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ShowSavedModel(const std::string& dir, std::ostream& out) {
  GS_ASSIGN_OR_RETURN(SavedModelData model, ReadSavedModel(dir));
  out << "saved model " << dir
      << " (producer: " << (model.proto.producer().empty() ? "?" : model.proto.producer()) << ")\n";
  const std::map<std::string, SignatureDef> signatures(model.proto.signature_def().begin(),
                                                       model.proto.signature_def().end());
  for (const auto& [key, sig] : signatures) {
    out << "\nsignature '" << key << "' (method " << sig.method_name() << ")\n  inputs:\n";
    PrintTensorInfos(sig.inputs(), out);
    out << "  outputs:" << (sig.outputs().empty() ? " (none)" : "") << "\n";
    PrintTensorInfos(sig.outputs(), out);
    if (sig.label_keys_size() > 0) {
      out << "  label keys: " << absl::StrJoin(sig.label_keys(), ", ") << "\n";
    }
    if (sig.trainable_variables_size() > 0) {
      out << "  trainable variables: " << absl::StrJoin(sig.trainable_variables(), ", ") << "\n";
    }
  }

  int64_t parameters = 0;
  std::string lines;
  for (const std::string& name : model.proto.variables()) {
    const Node& node = *model.graph->FindNode(name);
    const DType dtype = node.GetAttr<DType>("dtype").value_or(DType::kInvalid);
    const Shape shape = node.GetAttr<Shape>("shape").value_or(Shape::UnknownRank());
    if (shape.IsFullyDefined()) parameters += shape.num_elements();
    absl::StrAppendFormat(&lines, "  %-24s %-8s %s\n", name, DTypeName(dtype), shape.DebugString());
  }
  out << "\nvariables (" << model.proto.variables_size() << ", " << parameters << " parameters):\n"
      << lines;
  absl::Status checkpoint_status;
  if (model.proto.variables_size() > 0) {
    const std::string path = SavedModelCheckpointPath(dir);
    absl::StatusOr<CheckpointIndex> index = ReadCheckpointIndex(path);
    checkpoint_status = index.status();
    if (index.ok()) {
      out << "  checkpoint " << path << ": step " << index->step() << ", " << index->entry_size()
          << " tensors\n";
    } else {
      out << "  checkpoint: " << index.status().message() << "\n";
    }
  }
  out << "\n";
  PrintOpCounts(*model.graph, out);
  return checkpoint_status;
}

absl::Status ShowGraph(const std::string& path, std::ostream& out) {
  GraphDef graph_def;
  GS_RETURN_IF_ERROR(ReadProto(path, &graph_def));
  absl::StatusOr<std::unique_ptr<Graph>> graph = Graph::FromGraphDef(graph_def);
  if (!graph.ok()) return Annotate(graph.status(), path);
  out << "graph " << path << "\nplaceholders:\n";
  for (const auto& node : (*graph)->nodes()) {
    if (node->op() != "Placeholder" && node->op() != "PlaceholderWithDefault") continue;
    out << absl::StrFormat("  %-24s %-8s %s%s\n", node->name(), DTypeName(node->output_type(0)),
                           node->output_shape(0).DebugString(),
                           node->op() == "PlaceholderWithDefault" ? " (has a default)" : "");
  }
  out << "\n";
  PrintOpCounts(**graph, out);
  return absl::OkStatus();
}

absl::Status Run(const RunOptions& options, std::ostream& out) {
  GS_CHECK_ARG(options.model_dir.empty() != options.graph_path.empty(),
               "give exactly one of --model and --graph");
  GS_CHECK_ARG(!options.output_dir.empty(), "--output-dir is required");
  GS_CHECK_ARG(options.model_dir.empty() || options.fetches.empty(),
               "--fetch is for --graph; with --model use --output-key");
  GS_CHECK_ARG(options.graph_path.empty() || options.output_keys.empty(),
               "--output-key is for --model; with --graph use --fetch");
  GS_RETURN_IF_ERROR(CreateDirectories(options.output_dir));
  return options.model_dir.empty() ? RunGraph(options, out) : RunModel(options, out);
}

absl::Status Convert(const std::string& in, const std::string& out_path, const std::string& type,
                     std::ostream& out) {
  struct stat st;
  const bool is_dir = ::stat(in.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  const std::string base = in.substr(in.rfind('/') + 1);
  bool saved_model;
  if (type == "auto") {
    saved_model = is_dir || absl::StartsWith(base, "saved_model.");
  } else {
    GS_CHECK_ARG(type == "graph" || type == "saved_model",
                 "--type must be auto, graph or "
                 "saved_model, not '",
                 type, "'");
    saved_model = type == "saved_model";
  }
  GS_CHECK_ARG(!is_dir || saved_model, in, " is a directory, not a GraphDef file");
  const std::string in_path = is_dir ? SavedModelProtoPath(in) : in;
  SavedModel model;
  GraphDef graph_def;
  google::protobuf::Message* message =
      saved_model ? static_cast<google::protobuf::Message*>(&model) : &graph_def;
  GS_RETURN_IF_ERROR(ReadProto(in_path, message));
  GS_RETURN_IF_ERROR(WriteProto(out_path, *message));
  out << "wrote " << out_path << " (" << message->GetDescriptor()->name() << ", "
      << (IsTextPath(out_path) ? "text" : "binary") << ")\n";
  return absl::OkStatus();
}

}  // namespace gradserve::tools
